import type { Command } from '../command.js';
import { str } from '../command.js';
import { shortTime, table } from '../format.js';
import type { Event } from '../../events/service.js';
import type { Alert } from '../../alerts/service.js';
import { CliError } from '../client.js';
import { vaNames } from '../va-names.js';

export const eventCommands: Command[] = [
  {
    name: 'events',
    usage: 'outpost events [--type TYPE|prefix.*] [--subject ID] [--va VA] [--limit 50]',
    summary: 'Read the audit trail, newest first',
    options: { type: { type: 'string' }, subject: { type: 'string' }, va: { type: 'string' }, limit: { type: 'string' } },
    async run(ctx) {
      const q = new URLSearchParams({ limit: str(ctx.values.limit) ?? '50' });
      for (const [k, p] of [['type', 'type'], ['subject', 'subject'], ['va', 'vaId']] as const) {
        const v = str(ctx.values[k]);
        if (v) q.set(p, v);
      }
      const [r, va] = await ctx.api(async (api) => [(await api('GET', `/events?${q}`)) as { items: Event[] }, await vaNames(api)] as const);
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (e) => e.id], ['at', (e) => shortTime(e.at)], ['type', (e) => e.type], ['actor', (e) => e.actor],
          ['subject', (e) => e.subject], ['va', (e) => va(e.vaId)], ['details', (e) => e.details],
        ]),
      );
    },
  },
  {
    name: 'events verify',
    usage: 'outpost events verify',
    summary: 'Check the hash chain of the audit trail; exits 1 if a row was altered',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/events/verify'))) as { intact: boolean; firstBrokenId: number | null; head: { id: number } };
      ctx.output(r, () =>
        r.intact ? `the audit trail is intact: ${r.head.id} event(s), chained` : `the audit trail is broken: event ${r.firstBrokenId} does not chain to the one before it`,
      );
      return r.intact ? 0 : 1;
    },
  },
  {
    name: 'alerts',
    usage: 'outpost alerts [--all] [--acknowledged] [--evaluate]',
    summary: 'List open alerts not yet acknowledged (--acknowledged shows those too; --all includes cleared ones; --evaluate checks every condition first)',
    options: { all: { type: 'boolean' }, acknowledged: { type: 'boolean' }, evaluate: { type: 'boolean' } },
    async run(ctx) {
      const [r, va] = await ctx.api(async (api) => {
        if (ctx.values.evaluate) await api('POST', '/alerts/evaluate');
        return [(await api('GET', `/alerts?state=${ctx.values.all ? 'all' : 'open'}&limit=1000`)) as { items: Alert[] }, await vaNames(api)] as const;
      });
      const shown = ctx.values.acknowledged ? r.items : r.items.filter((a) => !a.acknowledged);
      const hidden = r.items.length - shown.length;
      ctx.output(shown, () =>
        (shown.length
          ? table(shown, [
              ['id', (a) => a.id], ['severity', (a) => a.severity], ['kind', (a) => a.kind], ['va', (a) => va(alertVa(a))],
              ['since', (a) => shortTime(a.firstSeenAt)], ['cleared', (a) => shortTime(a.clearedAt)],
              ['acknowledged', (a) => (a.acknowledged ? `by ${a.acknowledged.by}: ${a.acknowledged.reason}` : null)], ['message', (a) => a.message],
            ])
          : `no ${ctx.values.all ? '' : 'open '}alerts${hidden ? ' to act on' : ''}`) +
        (hidden ? `\n(${hidden} acknowledged alert(s) hidden: --acknowledged shows them)` : ''),
      );
    },
  },
  {
    name: 'alerts ack',
    usage: 'outpost alerts ack ALERT_ID --reason TEXT',
    summary: 'Acknowledge an open alert, saying why; it comes back if it clears and returns, its severity rises or a shortage grows',
    options: { reason: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the alert id (the ID column of `outpost alerts`)');
      const reason = str(ctx.values.reason);
      if (!reason?.trim()) throw new CliError('--reason TEXT is required: say why the alert may wait');
      const a = (await ctx.api((api) => api('POST', `/alerts/${encodeURIComponent(id)}/acknowledge`, { reason }))) as Alert;
      ctx.output(a, () => `alert ${a.id} (${a.kind}) acknowledged by ${a.acknowledged?.by}: ${a.acknowledged?.reason}`);
    },
  },
];

/** The VA an alert is about: named in its details, or the subject of a per-VA alert. */
function alertVa(a: Alert): string | null {
  if (typeof a.details.vaId === 'string') return a.details.vaId;
  return a.kind === 'device_stale' || a.kind === 'device_silent' ? a.subject : null;
}
