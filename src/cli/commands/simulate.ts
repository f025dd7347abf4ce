import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError, collectorUnreachable, probe } from '../client.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';

const DEFAULT_TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

export const simulateCommands: Command[] = [
  {
    name: 'simulate',
    usage: 'outpost simulate [--url http://127.0.0.1:8182] [--devices 10] [--reports 5] [--token SECRET | --va VA] [--tag TAG] [--batch 1] [--concurrency 16] [--quiet]',
    summary: 'Register simulated devices and send signed reports (demos, tests, benchmarks)',
    options: {
      url: { type: 'string' }, devices: { type: 'string' }, reports: { type: 'string' }, token: { type: 'string' }, va: { type: 'string' },
      tag: { type: 'string' }, batch: { type: 'string' }, concurrency: { type: 'string' }, ...quietOption,
    },
    async run(ctx) {
      const num = (k: string, d: number) => {
        const v = str(ctx.values[k]);
        const n = v === undefined ? d : Number(v);
        if (!Number.isInteger(n) || n < 1) throw new CliError(`--${k} must be a positive whole number`);
        return n;
      };
      const devices = num('devices', 10);
      const url = str(ctx.values.url) ?? `http://127.0.0.1:${ctx.config().http.port}`;
      if (!/^https?:\/\/[^/\s]+/.test(url)) throw new CliError(`--url: the collector's address, e.g. http://127.0.0.1:8182, not ${url}`);
      // Before a token is made for devices that could not use it.
      await probe(`${url.replace(/\/+$/, '')}/device/v1/collector`).catch((e: unknown) => {
        throw collectorUnreachable(e, url) ?? e;
      });
      let token = str(ctx.values.token);
      if (!token) {
        const va = str(ctx.values.va) ?? 'Default';
        // No token given: make one for exactly these devices, through the local operator API.
        token = await ctx.api(async (api) => {
          const vaId = ((await api('GET', `/virtual-accounts/${encodeURIComponent(va)}`)) as { id: string }).id;
          const t = (await api('POST', '/tokens', { vaId, description: 'outpost simulate', expiresInDays: 1, maxUses: devices })) as { secret: string };
          return t.secret;
        });
      }
      // Loaded on use: its HTTP client (undici) would otherwise add about 20 MB to every
      // outpost process, the long-running server included.
      const { simulate } = await import('../../simulator/simulate.js');
      const r = await withProgress(commandProgress(ctx, 'simulate', 'reports'), (p) => simulate(
        {
          url,
          token,
          devices,
          reports: num('reports', 5),
          tag: str(ctx.values.tag) ?? DEFAULT_TAG,
          batch: num('batch', 1),
          concurrency: num('concurrency', 16),
        },
        (line) => !ctx.json && ctx.print(line),
        (e) => p.update(e),
      )).catch((e: unknown) => {
        throw collectorUnreachable(e, url) ?? e;
      });
      ctx.output(r, () => `${r.reportsSent} reports from ${r.devices} devices in ${r.seconds.toFixed(1)} s: ${r.accepted} accepted, ${r.duplicate} duplicate, ${r.failed} failed`);
      if (r.failed) throw new CliError(`${r.failed} reports were refused`);
    },
  },
];
