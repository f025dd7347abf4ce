import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import { safeText } from '../safe-text.js';
import type { ReportOriginal, StoredReport } from '../../reports/service.js';
import type { PruneResult } from '../../retention/pruner.js';

const source = (v: string | boolean | undefined): string => {
  const s = str(v);
  if (s === undefined) return '';
  if (s !== 'device' && s !== 'rum') throw new CliError(`--source is device or rum, not ${JSON.stringify(s)}`);
  return `?source=${s}`;
};

export const reportCommands: Command[] = [
  {
    name: 'reports list',
    usage: 'outpost reports list DEVICE_ID [--limit N]',
    summary: "List a device's stored reports, newest first (the ids `reports show` takes)",
    options: { limit: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the device id (the ID column of `outpost devices list`)');
      const q = new URLSearchParams({ limit: str(ctx.values.limit) ?? '100' });
      const r = (await ctx.api((api) => api('GET', `/devices/${encodeURIComponent(id)}/reports?${q}`))) as { items: StoredReport[]; nextCursor: string | null };
      ctx.output(r, () =>
        (r.items.length
          ? table(r.items, [
              ['report id', (x) => x.reportId], ['source', (x) => x.source], ['generated', (x) => shortTime(x.generatedAt)],
              ['received', (x) => shortTime(x.receivedAt)], ['measurements', (x) => x.measurements], ['bytes', (x) => x.bytes],
              ['acknowledgement', (x) => x.acknowledgements.map((a) => `${a.destination} ${a.state}`).join(', ')],
            ])
          : `device ${id} holds no reports`) + (r.nextCursor ? '\n(more: --limit N shows up to 1000)' : ''),
      );
    },
  },
  {
    name: 'reports show',
    usage: 'outpost reports show DEVICE_ID REPORT_ID [--source device|rum] [--json]',
    summary: "Print a stored report's original exactly: a RUM report as received, a device report's stored JSON",
    options: { source: { type: 'string' } },
    async run(ctx) {
      const [id, reportId] = ctx.positionals;
      if (!id || !reportId) throw new CliError('usage: outpost reports show DEVICE_ID REPORT_ID (`outpost reports list DEVICE_ID` lists the ids)');
      const r = (await ctx.api((api) =>
        api('GET', `/devices/${encodeURIComponent(id)}/reports/${encodeURIComponent(reportId)}${source(ctx.values.source)}`),
      )) as ReportOriginal;
      if (ctx.json) return void ctx.output(r, () => '');
      // Redirected or piped, the bytes go out as they were kept, to compare or re-import. On a
      // terminal, device-written text could drive it (escape sequences), so controls are shown escaped.
      await write(process.stdout.isTTY ? safeText(r.original) : r.original);
    },
  },
  {
    name: 'reports prune',
    usage: 'outpost reports prune [--dry-run] [--json]',
    summary: 'Prune raw reports settled with every destination and older than retention.reportsDays (tombstones stay); --dry-run counts them',
    options: { 'dry-run': { type: 'boolean' } },
    async run(ctx) {
      const dryRun = Boolean(ctx.values['dry-run']);
      const r = (await ctx.api((api) => api('POST', '/reports/prune', { dryRun }))) as PruneResult;
      ctx.output(r, () => describePrune(r));
    },
  },
];

export function describePrune(r: PruneResult): string {
  if (!r.enabled) return 'retention.reportsDays is 0: reports are kept for ever, nothing pruned';
  const what = `${r.pruned} report(s) (${r.device} device, ${r.rum} RUM) settled with every destination and received before ${r.cutoff}`;
  const span = r.pruned ? `, received ${r.oldestReceivedAt} to ${r.newestReceivedAt}` : '';
  const kept = r.keptCurrent ? `\n${r.keptCurrent} old report(s) kept: each is still a device's current measurement of a tag` : '';
  return (r.dryRun ? `dry run: would prune ${what}${span}; nothing removed` : `pruned ${what}${span}, in ${r.batches} batch(es), ${r.seconds} s; ${r.tombstones} tombstone(s) held`) + kept;
}

/** Resolves once the bytes are handed to the OS: the process may exit right after. */
function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(Buffer.from(text, 'utf8'), (e) => (e ? reject(e) : resolve())));
}
