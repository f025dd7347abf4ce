import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { appendAfterMarker, dataOffset, flipAt, members, tarBytes, writeTar, type Member } from '../helpers/tar-craft.js';
import { streamPayloadLines, verifyBundle } from '../../src/exchange/read.js';

/** Every refusal path of the bundle reader closes what it opened: file, tar iterator, gunzip. */
let s: Site;
let response: string;
let usage: string;

beforeAll(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
  const d = await s.h.registered();
  for (let i = 0; i < 3; i++) await d.sendReport(d.report(TAG, i + 1));
  usage = (await s.exportNow()).file;
  response = (await s.up.process(usage)).responseFile;
});
afterAll(() => s.close());

const openDescriptors = () => readdirSync('/proc/self/fd').length;

const flip = (at: (f: string) => number) => (f: string) => flipAt(f, at(f));
const cut = (keep: (size: number) => number) => (f: string) => {
  const b = readFileSync(f);
  writeFileSync(f, b.subarray(0, keep(b.length)));
};
const rewrite = (edit: (m: Member[]) => Member[]) => (f: string) => writeTar(f, edit(members(f)));

/** The refusal kinds of tamper.test.ts, and the trailer: each refused at a different point of the read. */
const kinds: [string, (f: string) => void][] = [
  ['truncated', cut(() => 700)],
  ['truncated', cut(() => 1500)],
  ['truncated', cut((n) => n - 1024)],
  ['truncated', cut((n) => n - 700)],
  ['bad_signature', flip((f) => dataOffset(f, 'manifest.json') + 40)],
  ['bad_signature', flip((f) => dataOffset(f, 'manifest.sig') + 5)],
  ['payload_mismatch', flip((f) => dataOffset(f, 'acks.ndjson.gz') + 12)],
  ['malformed_archive', flip(() => 3)],
  ['unlisted_member', rewrite((ms) => [...ms, { name: 'extra.ndjson.gz', data: gzipSync('{}\n') }])],
  ['duplicate_member', rewrite((ms) => [...ms, ms[2]!])],
  ['not_regular_file', rewrite((ms) => [...ms.slice(0, 2), { name: 'evil', data: Buffer.alloc(0), type: '2' }, ...ms.slice(2)])],
  ['extended_header', rewrite((ms) => [...ms.slice(0, 2), { name: 'PaxHeader', data: Buffer.from('30 path=acks.ndjson.gz\n'), type: 'x' }, ...ms.slice(2)])],
  ['missing_payload', rewrite((ms) => ms.slice(0, -1))],
  ['trailing_data', (f) => appendAfterMarker(f, tarBytes([{ name: 'acks.ndjson.gz', data: gzipSync('{}\n') }]))],
];

let n = 0;
const hostile = (i: number): { file: string; code: string } => {
  const [code, edit] = kinds[i % kinds.length]!;
  const file = join(s.h.dir, `hostile-${++n}.opb`);
  copyFileSync(response, file);
  edit(file);
  return { file, code };
};

describe('when 200 hostile bundles are read and refused', () => {
  it('then the process holds no more open descriptors than before', async () => {
    // One of each first, so whatever the import opens once and keeps (the store, a worker) is in the baseline.
    for (let i = 0; i < kinds.length; i++) {
      const { file, code } = hostile(i);
      expect((await s.importFile(file)).body.error.code).toBe(code);
    }
    const before = openDescriptors();
    for (let i = 0; i < 200; i++) {
      const { file, code } = hostile(i);
      const r = await s.importFile(file);
      expect(r.body.error?.code, `${file}: ${JSON.stringify(r.body)}`).toBe(code);
    }
    // Closing is asynchronous: give it a moment, but growth of one per refusal never settles.
    let after = openDescriptors();
    for (let i = 0; i < 40 && after > before; i++) after = (await sleep(50), openDescriptors());
    expect(after).toBeLessThanOrEqual(before);
  });
});

describe('when a payload is streamed and the file turns out cut short', () => {
  it('then the reader\'s error reaches the caller instead of leaving decompression waiting', async () => {
    const { manifest } = await verifyBundle(usage, { kinds: ['usage'], keyFor: (m) => s.up.service.collectorKeyFor(m) });
    const file = join(s.h.dir, 'cut-while-reading.opb');
    copyFileSync(usage, file);
    // Cut in the middle of the reports payload, as if the file changed after it was verified.
    const at = dataOffset(file, 'reports.ndjson.gz');
    writeFileSync(file, readFileSync(file).subarray(0, at + 20));
    const before = openDescriptors();
    const outcome = await Promise.race([
      streamPayloadLines(file, manifest, 'reports.ndjson.gz', () => {}).then(() => 'finished', (e: { code?: string }) => e.code),
      sleep(5_000).then(() => 'still waiting after 5 s'),
    ]);
    expect(outcome).toBe('truncated');
    let after = openDescriptors();
    for (let i = 0; i < 40 && after > before; i++) after = (await sleep(50), openDescriptors());
    expect(after).toBeLessThanOrEqual(before);
  });
});
