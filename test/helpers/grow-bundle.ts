import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { members, writeTar } from './tar-craft.js';

/**
 * Adds `extra` reports (refs after the last, copies of it under new ids) to a usage bundle and
 * signs it again with the collector's key: a large bundle from a small site in a moment.
 * `brokenLast` makes the last added line malformed (a bundle that fails mid-count). Returns the
 * number of reports the bundle now lists.
 */
export function growBundle(file: string, extra: number, sign: (b: Buffer) => Buffer, o: { brokenLast?: boolean } = {}): number {
  const ms = members(file);
  const payload = ms.find((m) => m.name === 'reports.ndjson.gz')!;
  const lines = gunzipSync(payload.data).toString('utf8').trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as { ref: number; reportId: string };
  const more: string[] = [];
  for (let i = 1; i <= extra; i++) more.push(JSON.stringify({ ...last, ref: last.ref + i, reportId: `grown-${i}` }));
  if (o.brokenLast) more[more.length - 1] = '{"ref": not json';
  payload.data = gzipSync([...lines, ...more].join('\n') + '\n');
  const manifest = JSON.parse(ms[0]!.data.toString('utf8'));
  const listed = manifest.payloads.find((p: { name: string }) => p.name === 'reports.ndjson.gz');
  Object.assign(listed, { size: payload.data.length, records: lines.length + extra, sha256: createHash('sha256').update(payload.data).digest('hex') });
  if (manifest.meta.reports !== undefined) manifest.meta.reports = lines.length + extra;
  ms[0]!.data = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  ms[1]!.data = sign(ms[0]!.data);
  writeTar(file, ms);
  return lines.length + extra;
}
