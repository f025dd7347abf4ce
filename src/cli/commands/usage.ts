import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime } from '../format.js';
import type { ListedDevice, RumImportResult } from '../../rum/import.js';
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
];
