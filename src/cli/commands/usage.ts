import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { ListedDevice, RumImportResult } from '../../rum/import.js';
import type { UsageForecast, UsageHistoryList } from '../../history/service.js';
import { historyCsv } from '../../shared/csv.js';
import { assertReadableFile } from '../../shared/files.js';

export const usageCommands: Command[] = [
  {
    name: 'usage import',
    usage: 'outpost usage import FILE [--va VA] [--skip-invalid] [--override-signed]',
    summary: 'Import a RUM file from a device; unknown devices are created in the VA',
    options: { va: { type: 'string' }, 'skip-invalid': { type: 'boolean' }, 'override-signed': { type: 'boolean' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the RUM file to import');
      // A missing, unreadable or non-regular file is refused with its code and full path (see run.ts).
      assertReadableFile(resolve(file), 'RUM file');
      const data = readFileSync(file); // the bytes as they are, sent as they are; the server checks UTF-8
      const va = str(ctx.values.va) ?? 'Default';
      const q = new URLSearchParams({
        vaId: va,
        skipInvalid: String(Boolean(ctx.values['skip-invalid'])),
        overrideSigned: String(Boolean(ctx.values['override-signed'])),
        fileName: basename(file),
      });
      let r: RumImportResult;
      try {
        r = (await ctx.api((api) => api('POST', `/usage/rum?${q}`, data, { text: true }))) as RumImportResult;
      } catch (e) {
        const invalid = ((e as CliError).body as { error?: { details?: { invalid?: { index: number | null; line: number; column: number; reason: string }[] } } })?.error?.details?.invalid;
        if (invalid?.length && !ctx.json) {
          throw new CliError(`${(e as Error).message}\n` + invalid.map((p) => `  element ${p.index ?? '-'} at ${p.line}:${p.column}: ${p.reason}`).join('\n'));
        }
        throw e;
      }
      const listed = (d: ListedDevice) => `  ${d.udi} (${d.deviceId}), latest report ${shortTime(d.lastReportAt)}`;
      const more = (shown: number, total: number) => (total > shown ? [`  ... and ${total - shown} more`] : []);
      ctx.output(r, () =>
        [
          `${r.elements} report(s): ${r.accepted} accepted, ${r.replaced} grown (replaced an earlier copy), ${r.duplicate} duplicate, ${r.superseded} older copies`,
          `${r.devicesCreated} device(s) created`,
          ...(r.stale
            ? [
                `${r.stale} device(s) stale at once: their latest report ended more than ${r.staleAfterDays} days ago (device.staleAfterDays), so their usage does not count until they report again:`,
                ...r.staleDevices.map(listed), ...more(r.staleDevices.length, r.stale),
              ]
            : []),
          ...(r.otherVa
            ? [
                `${r.otherVa} device(s) stayed in the VA they already belong to, not ${va} (move one with \`outpost devices move DEVICE_ID --va ${va}\`):`,
                ...r.otherVaDevices.map((d) => `  ${d.udi} (${d.deviceId}) in ${d.vaName}`), ...more(r.otherVaDevices.length, r.otherVa),
              ]
            : []),
          ...(r.invalid.length ? [`${r.invalid.length} skipped:`, ...r.invalid.map((p) => `  element ${p.index ?? '-'} at ${p.line}:${p.column}: ${p.reason}`)] : []),
        ].join('\n'),
      );
    },
  },
  {
    name: 'usage history',
    usage: 'outpost usage history --va VA [--tag TAG] [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--json|--csv]',
    summary: "Daily in-use (the day's highest) and owned of a virtual account, per license",
    options: { va: { type: 'string' }, tag: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, csv: { type: 'boolean' } },
    fields: { vaId: '--va' },
    async run(ctx) {
      const va = str(ctx.values.va);
      if (!va) throw new CliError('name the virtual account with --va');
      if (ctx.json && ctx.values.csv) throw new CliError('choose one of --json and --csv');
      const q = new URLSearchParams({ vaId: va });
      for (const k of ['tag', 'since', 'until'] as const) {
        const v = str(ctx.values[k]);
        if (v !== undefined) q.set(k, v);
      }
      const r = (await ctx.api((api) => api('GET', `/usage/history?${q}`))) as UsageHistoryList;
      if (ctx.values.csv) return void process.stdout.write(historyCsv(r));
      ctx.output(r, () =>
        r.items.length
          ? `${r.vaName} (${r.vaId}), ${r.since === '0000-01-01' ? 'from the first day' : `since ${r.since}`} until ${r.until}\n` +
            table(r.items, [['day', (d) => d.day], ['license', (d) => d.tag], ['in use', (d) => d.inUse], ['owned', (d) => (d.owned === null ? 'unlimited' : d.owned)]])
          : `no usage history for ${r.vaName} in that range`,
      );
    },
  },
  {
    name: 'usage forecast',
    usage: 'outpost usage forecast [--va VA] [--json]',
    summary: 'When each license, at its recent trend, will pass what its virtual account owns (with the fit shown)',
    options: { va: { type: 'string' } },
    fields: { vaId: '--va' },
    async run(ctx) {
      const va = str(ctx.values.va);
      const r = (await ctx.api((api) => api('GET', `/usage/forecast${va ? `?${new URLSearchParams({ vaId: va })}` : ''}`))) as { items: UsageForecast[] };
      const n = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? '-' : String(Math.round(x * 10 ** digits) / 10 ** digits));
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['va', (f) => f.vaName], ['license', (f) => f.displayName], ['owned', (f) => (f.owned === null ? 'unlimited' : f.owned)], ['in use', (f) => f.inUse],
              ['slope/day', (f) => n(f.fit?.slopePerDay)], ['intercept', (f) => n(f.fit?.intercept)], ['r2', (f) => n(f.fit?.r2)], ['days', (f) => f.fit?.days ?? 0],
              ['crosses on', (f) => f.crossingDate ?? `no forecast: ${f.noForecast?.message ?? ''}`],
            ]) +
            '\n\nA least-squares line through the daily peaks of the last complete days; "crosses on" is the first day the line is above what is owned.' +
            '\nThe intercept is the line\'s value on the first day used.'
          : 'no usage history yet: the collector records each day\'s in-use as it runs',
      );
    },
  },
];
