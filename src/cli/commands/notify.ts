import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';

interface ChannelStatus { pending: number; failed: number; lastSuccessAt: string | null; lastError: { at: string; message: string } | null }
interface Sink { id: string; name: string; kind: string; syslog?: { host: string; port: number; transport: string }; webhook?: { url: string }; filter: { severities: string[]; vaIds: string[] | null; kinds: string[] | null }; resolutions: boolean }

const list = (v: string | boolean | undefined) => str(v)?.split(',').map((s) => s.trim()).filter(Boolean);

export const notifyCommands: Command[] = [
  {
    name: 'notify status',
    usage: 'outpost notify status',
    summary: 'Notifications per channel (email, syslog, webhook): pending, failed, the last success and the last error',
    async run(ctx) {
      const s = (await ctx.api((api) => api('GET', '/notifications/status'))) as Record<string, ChannelStatus>;
      ctx.output(s, () =>
        table(Object.entries(s), [
          ['channel', ([c]) => c], ['pending', ([, v]) => v.pending], ['failed', ([, v]) => v.failed],
          ['last success', ([, v]) => (v.lastSuccessAt ? shortTime(v.lastSuccessAt) : '-')],
          ['last error', ([, v]) => (v.lastError ? `${shortTime(v.lastError.at)} ${v.lastError.message}` : '-')],
        ]),
      );
    },
  },
  {
    name: 'notify sink list',
    usage: 'outpost notify sink list',
    summary: 'The syslog and webhook sinks and their filters',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/notifications/sinks'))) as { items: Sink[] };
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (s) => s.id], ['name', (s) => s.name], ['kind', (s) => s.kind],
          ['target', (s) => (s.syslog ? `${s.syslog.transport}://${s.syslog.host}:${s.syslog.port}` : s.webhook?.url)],
          ['severities', (s) => s.filter.severities.join(',')], ['vas', (s) => s.filter.vaIds?.join(',') ?? 'all'], ['kinds', (s) => s.filter.kinds?.join(',') ?? 'all'],
          ['resolutions', (s) => (s.resolutions ? 'yes' : 'no')],
        ]),
      );
    },
  },
  {
    name: 'notify sink add',
    usage:
      'outpost notify sink add --name NAME (--syslog HOST[:PORT] [--tcp] | --webhook URL --hmac-key-file FILE) [--severities warning,critical] [--va VA,...] [--kinds shortage,...] [--resolutions]',
    summary: 'Add a syslog (RFC 5424, UDP or TCP) or webhook (JSON signed with HMAC-SHA256) sink, with a filter',
    options: {
      name: { type: 'string' }, syslog: { type: 'string' }, tcp: { type: 'boolean' }, webhook: { type: 'string' }, 'hmac-key-file': { type: 'string' },
      severities: { type: 'string' }, va: { type: 'string' }, kinds: { type: 'string' }, resolutions: { type: 'boolean' },
    },
    fields: { name: '--name', 'syslog.host': '--syslog', 'syslog.port': '--syslog', 'webhook.url': '--webhook', 'webhook.hmacKeyFile': '--hmac-key-file', 'filter.severities': '--severities', 'filter.vaIds': '--va', 'filter.kinds': '--kinds' },
    async run(ctx) {
      const name = str(ctx.values.name);
      const syslog = str(ctx.values.syslog);
      const webhook = str(ctx.values.webhook);
      if (!name) throw new CliError('--name is required');
      if (!syslog === !webhook) throw new CliError('give either --syslog HOST[:PORT] or --webhook URL');
      const keyFile = str(ctx.values['hmac-key-file']);
      if (webhook && !keyFile) throw new CliError('--hmac-key-file is required with --webhook: a file (mode 0600) holding the HMAC secret');
      const s = (await ctx.api(async (api) => {
        const vas = list(ctx.values.va);
        const vaIds = vas ? await Promise.all(vas.map(async (v) => ((await api('GET', `/virtual-accounts/${encodeURIComponent(v)}`)) as { id: string }).id)) : undefined;
        const m = syslog ? /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(syslog) : null;
        if (syslog && !m) throw new CliError('--syslog takes HOST or HOST:PORT');
        return api('POST', '/notifications/sinks', {
          name,
          ...(m
            ? { kind: 'syslog', syslog: { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}), transport: ctx.values.tcp ? 'tcp' : 'udp' } }
            : { kind: 'webhook', webhook: { url: webhook, hmacKeyFile: keyFile } }),
          filter: { ...(list(ctx.values.severities) ? { severities: list(ctx.values.severities) } : {}), ...(vaIds ? { vaIds } : {}), ...(list(ctx.values.kinds) ? { kinds: list(ctx.values.kinds) } : {}) },
          resolutions: ctx.values.resolutions === true,
        });
      })) as Sink;
      ctx.output(s, () => `sink ${s.name} (${s.kind}) added: ${s.id}`);
    },
  },
  {
    name: 'notify sink remove',
    usage: 'outpost notify sink remove SINK_ID',
    summary: 'Remove a sink; what it had still to deliver is marked failed',
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the sink id to remove');
      const r = await ctx.api((api) => api('DELETE', `/notifications/sinks/${encodeURIComponent(id)}`));
      ctx.output(r, () => `sink ${id} removed`);
    },
  },
];
