import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';

interface ChannelStatus { pending: number; failed: number; lastSuccessAt: string | null; lastError: { at: string; message: string } | null }
interface Sink { id: string; name: string; kind: string; enabled: boolean; secret?: string; syslog?: { host: string; port: number; transport: string }; webhook?: { url: string }; filter: { severities: string[]; vaIds: string[] | null; kinds: string[] | null }; resolutions: boolean }

/**
 * The command line's own wording of a refused sink field: the generic wording maps a field's
 * first segment only, and a sink's fields are nested (filter.severities is --severities).
 */
async function worded<T>(fields: Record<string, string>, usage: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const issues = e instanceof CliError ? (e.body as { error?: { details?: { issues?: { path: string; message: string }[] } } } | undefined)?.error?.details?.issues : undefined;
    const lines = issues?.map((i) => {
      const option = fields[i.path.replace(/\[\d+\]/g, '')];
      return option && `${option}: ${i.message}`;
    });
    if (!lines?.length || lines.some((l) => !l)) throw e;
    throw new CliError(`${[...new Set(lines)].join('; ')}\nusage: ${usage}`, (e as CliError).exitCode, (e as CliError).body);
  }
}

/** A key the collector made for a webhook: printed this once, never again. */
const shownOnce = (s: Sink) => (s.secret ? `\nwebhook secret (shown once; the receiver checks signatures with it): ${s.secret}` : '');
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
          ['resolutions', (s) => (s.resolutions ? 'yes' : 'no')], ['enabled', (s) => (s.enabled ? 'yes' : 'no')],
        ]),
      );
    },
  },
  {
    name: 'notify sink add',
    usage:
      'outpost notify sink add --name NAME (--syslog HOST[:PORT] [--tcp] | --webhook URL [--hmac-key-file FILE]) [--severities warning,critical] [--va VA,...] [--kinds shortage,...] [--resolutions]',
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
      const s = (await ctx.api(async (api) => {
        const vas = list(ctx.values.va);
        const vaIds = vas ? await Promise.all(vas.map(async (v) => ((await api('GET', `/virtual-accounts/${encodeURIComponent(v)}`)) as { id: string }).id)) : undefined;
        const m = syslog ? /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(syslog) : null;
        if (syslog && !m) throw new CliError('--syslog takes HOST or HOST:PORT');
        return api('POST', '/notifications/sinks', {
          name,
          ...(m
            ? { kind: 'syslog', syslog: { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}), transport: ctx.values.tcp ? 'tcp' : 'udp' } }
            : { kind: 'webhook', webhook: { url: webhook, ...(keyFile ? { hmacKeyFile: keyFile } : {}) } }),
          filter: { ...(list(ctx.values.severities) ? { severities: list(ctx.values.severities) } : {}), ...(vaIds ? { vaIds } : {}), ...(list(ctx.values.kinds) ? { kinds: list(ctx.values.kinds) } : {}) },
          resolutions: ctx.values.resolutions === true,
        });
      })) as Sink;
      ctx.output(s, () => `sink ${s.name} (${s.kind}) added: ${s.id}${shownOnce(s)}`);
    },
  },
  {
    name: 'notify sink change',
    usage:
      'outpost notify sink change SINK_ID [--name NAME] [--severities info,warning,critical] [--va VA,...|--all-vas] [--kinds shortage,...|--all-kinds] [--resolutions|--no-resolutions] [--enable|--disable] [--syslog HOST[:PORT]] [--tcp|--udp] [--webhook URL] [--hmac-key-file FILE|--new-secret]',
    summary: "Change a sink's filter, enabled state or target; the rest stays as it is",
    options: {
      name: { type: 'string' }, severities: { type: 'string' }, va: { type: 'string' }, 'all-vas': { type: 'boolean' }, kinds: { type: 'string' }, 'all-kinds': { type: 'boolean' },
      resolutions: { type: 'boolean' }, 'no-resolutions': { type: 'boolean' }, enable: { type: 'boolean' }, disable: { type: 'boolean' },
      syslog: { type: 'string' }, tcp: { type: 'boolean' }, udp: { type: 'boolean' }, webhook: { type: 'string' }, 'hmac-key-file': { type: 'string' }, 'new-secret': { type: 'boolean' },
    },
    fields: {
      name: '--name', 'syslog.host': '--syslog', 'syslog.port': '--syslog', 'syslog.transport': '--tcp/--udp', 'webhook.url': '--webhook', 'webhook.hmacKeyFile': '--hmac-key-file',
      'filter.severities': '--severities', 'filter.vaIds': '--va', 'filter.kinds': '--kinds', id: 'SINK_ID',
    },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the sink id to change');
      const v = ctx.values;
      const pairs: [string, string][] = [['va', 'all-vas'], ['kinds', 'all-kinds'], ['resolutions', 'no-resolutions'], ['enable', 'disable'], ['tcp', 'udp'], ['hmac-key-file', 'new-secret']];
      for (const [a, b] of pairs) if (v[a] !== undefined && v[b] !== undefined) throw new CliError(`give --${a} or --${b}, not both`);
      const syslog = str(v.syslog);
      const m = syslog ? /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(syslog) : null;
      if (syslog && !m) throw new CliError('--syslog takes HOST or HOST:PORT');
      const s = (await worded(this.fields!, this.usage, () => ctx.api(async (api) => {
        const vas = list(v.va);
        const vaIds = vas ? await Promise.all(vas.map(async (x) => ((await api('GET', `/virtual-accounts/${encodeURIComponent(x)}`)) as { id: string }).id)) : undefined;
        const filter = {
          ...(list(v.severities) ? { severities: list(v.severities) } : {}),
          ...(vaIds ? { vaIds } : v['all-vas'] ? { vaIds: null } : {}),
          ...(list(v.kinds) ? { kinds: list(v.kinds) } : v['all-kinds'] ? { kinds: null } : {}),
        };
        const target = {
          ...(m ? { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}) } : {}),
          ...(v.tcp ? { transport: 'tcp' } : v.udp ? { transport: 'udp' } : {}),
        };
        const hook = { ...(str(v.webhook) ? { url: str(v.webhook) } : {}), ...(str(v['hmac-key-file']) ? { hmacKeyFile: str(v['hmac-key-file']) } : {}), ...(v['new-secret'] ? { newSecret: true } : {}) };
        const body = {
          ...(str(v.name) ? { name: str(v.name) } : {}),
          ...(Object.keys(filter).length ? { filter } : {}),
          ...(v.resolutions ? { resolutions: true } : v['no-resolutions'] ? { resolutions: false } : {}),
          ...(v.enable ? { enabled: true } : v.disable ? { enabled: false } : {}),
          ...(Object.keys(target).length ? { syslog: target } : {}),
          ...(Object.keys(hook).length ? { webhook: hook } : {}),
        };
        if (!Object.keys(body).length) throw new CliError('name something to change: --severities, --va, --kinds, --enable, --disable, --syslog, --webhook, ...');
        return api('PATCH', `/notifications/sinks/${encodeURIComponent(id)}`, body);
      }))) as Sink;
      ctx.output(s, () => `sink ${s.name} (${s.kind}, ${s.enabled ? 'enabled' : 'disabled'}) changed: severities ${s.filter.severities.join(',')}, VAs ${s.filter.vaIds?.join(',') ?? 'all'}, kinds ${s.filter.kinds?.join(',') ?? 'all'}${shownOnce(s)}`);
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
