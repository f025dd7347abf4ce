import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import type { RumImportResult } from '../../rum/import.js';

export const usageCommands: Command[] = [
  {
    name: 'usage import',
    usage: 'outpost usage import FILE [--va VA] [--skip-invalid] [--override-signed]',
    summary: 'Import a RUM file from a device; unknown devices are created in the VA',
    options: { va: { type: 'string' }, 'skip-invalid': { type: 'boolean' }, 'override-signed': { type: 'boolean' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the RUM file to import');
      let data: Buffer;
      try {
        data = readFileSync(file); // the bytes as they are, sent as they are; the server checks UTF-8
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
      }
      const q = new URLSearchParams({
        vaId: str(ctx.values.va) ?? 'Default',
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
      ctx.output(r, () =>
        [
          `${r.elements} report(s): ${r.accepted} accepted, ${r.replaced} replaced by a grown copy, ${r.duplicate} duplicate, ${r.superseded} older copies`,
          `${r.devicesCreated} device(s) created`,
          ...(r.invalid.length ? [`${r.invalid.length} skipped:`, ...r.invalid.map((p) => `  element ${p.index ?? '-'} at ${p.line}:${p.column}: ${p.reason}`)] : []),
        ].join('\n'),
      );
    },
  },
];
