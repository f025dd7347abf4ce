import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { Device } from '../../devices/service.js';
import { vaNames } from '../va-names.js';
import { many } from './labels.js';

const need = (id: string | undefined): string => {
  if (!id) throw new CliError('name the device id');
  return encodeURIComponent(id);
};

const action = (name: string, summary: string, path: string, done: string): Command => ({
  name: `devices ${name}`,
  usage: `outpost devices ${name} DEVICE_ID`,
  summary,
  async run(ctx) {
    const d = (await ctx.api((api) => api('POST', `/devices/${need(ctx.positionals[0])}/${path}`))) as Device;
    ctx.output(d, () => `device ${d.id} (${d.udi.pid}:${d.udi.serial}) ${done}`);
  },
});

export const deviceCommands: Command[] = [
  {
    name: 'devices list',
    usage: 'outpost devices list [--va VA] [--status active|stale|deregistered] [--pid PID] [--seen-before ISO] [--seen-after ISO] [--pending-rekey] [--label NAME]… [--limit N]',
    summary: 'List devices',
    options: {
      va: { type: 'string' }, status: { type: 'string' }, pid: { type: 'string' }, 'pending-rekey': { type: 'boolean' }, limit: { type: 'string' },
      'seen-before': { type: 'string' }, 'seen-after': { type: 'string' }, label: { type: 'string', multiple: true },
    },
    async run(ctx) {
      const q = new URLSearchParams();
      for (const [k, p] of [['va', 'vaId'], ['status', 'status'], ['pid', 'pid'], ['limit', 'limit'], ['seen-before', 'seenBefore'], ['seen-after', 'seenAfter']] as const) {
        const v = str(ctx.values[k]);
        if (v) q.set(p, v);
      }
      if (ctx.values['pending-rekey']) q.set('pendingRekey', 'true');
      for (const l of many((ctx.values as Record<string, unknown>).label)) q.append('label', l);
      const [r, va] = await ctx.api(async (api) => [(await api('GET', `/devices?${q}`)) as { items: Device[]; nextCursor: string | null }, await vaNames(api)] as const);
      ctx.output(r, () =>
        table(r.items, [
          ['id', (d) => d.id], ['udi', (d) => `${d.udi.pid}:${d.udi.serial}`], ['hostname', (d) => d.hostname], ['va', (d) => va(d.vaId)],
          ['status', (d) => d.status + (d.pendingRekey ? ` (pending: ${d.pendingRekey.reason.replace('_', ' ')})` : '')], ['last seen', (d) => shortTime(d.lastSeenAt)],
          ['labels', (d) => d.labels.map((l) => l.name).join('; ')],
        ]) + (r.nextCursor ? `\n(more: --limit or the API's cursor ${r.nextCursor})` : ''),
      );
    },
  },
  {
    name: 'devices show',
    usage: 'outpost devices show DEVICE_ID',
    summary: 'Show one device',
    async run(ctx) {
      const d = (await ctx.api((api) => api('GET', `/devices/${need(ctx.positionals[0])}`))) as Device;
      ctx.output(d, () => JSON.stringify(d, null, 2));
    },
  },
  {
    name: 'devices move',
    usage: 'outpost devices move DEVICE_ID --va VA',
    summary: 'Move a device to another virtual account',
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      if (!va) throw new CliError('--va is required');
      const d = (await ctx.api((api) => api('POST', `/devices/${need(ctx.positionals[0])}/move`, { vaId: va }))) as Device;
      ctx.output(d, () => `device ${d.id} moved to ${d.vaId}`);
    },
  },
  action('remove', 'Deregister a device (its licenses are released at once)', 'deregister', 'deregistered'),
  action('approve', 'Approve a pending key (a re-key, a claim of a RUM-only device, a deregistered device coming back)', 'rekey/approve', 'approved: it signs with the new key'),
  action('refuse', 'Refuse a pending re-key', 'rekey/refuse', 'keeps its current key'),
];
