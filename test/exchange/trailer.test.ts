import { copyFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { appendAfterMarker, members, padToRecord, tarBytes } from '../helpers/tar-craft.js';

/**
 * A bundle is read the same by Outpost and by `tar`: after the end-of-archive marker only zero
 * padding to the end of the marker's 10,240-byte record may follow. Each bundle here is signed
 * validly; only what follows its marker can make it fail.
 */
let s: Site;
let usage: string;
let response: string;
let snapshot: () => unknown;
let upstreamSnapshot: () => unknown;

beforeAll(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
  const d = await s.h.registered();
  await d.sendReport(d.report(TAG, 2));
  usage = (await s.exportNow()).file;
  response = (await s.up.process(usage)).responseFile;
  snapshot = () =>
    ['SELECT * FROM report_pending', 'SELECT * FROM report_acks', 'SELECT * FROM entitlements', 'SELECT * FROM bundles', "SELECT * FROM meta WHERE key != 'time_floor'", 'SELECT * FROM events']
      .map((q) => s.h.services.db.prepare(q).all());
  upstreamSnapshot = () =>
    (s.up.service.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[])
      .map(({ name }) => s.up.service.db.prepare(`SELECT * FROM "${name}"`).all());
});
afterAll(() => s.close());

let n = 0;
const copy = (from: string, edit: (file: string) => void): string => {
  const file = join(s.h.dir, `trailer-${++n}.opb`);
  copyFileSync(from, file);
  edit(file);
  return file;
};
/** A second member, with its own marker, after the bundle's marker: what `tar -itf` would list and a lax reader skip. */
const smuggled = (name: string, lines: string) => tarBytes([{ name, data: gzipSync(lines) }]);

async function expectRefused(file: string, message: RegExp) {
  const before = snapshot();
  const r = await s.importFile(file);
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.error.code).toBe('trailing_data');
  expect(r.body.error.message).toMatch(message);
  expect(snapshot()).toEqual(before);
}

describe('when bytes follow the end-of-archive marker of a signed response bundle', () => {
  it('then a second acks member appended after the marker is refused, naming where the data starts', async () => {
    const size = statSync(response).size;
    const file = copy(response, (f) => appendAfterMarker(f, smuggled('acks.ndjson.gz', '{"from":1,"to":99,"status":"rejected","reason":"x"}\n')));
    expect(members(file).map((m) => m.name)).toContain('acks.ndjson.gz'); // the bundle before the marker is the genuine one
    await expectRefused(file, new RegExp(`data at byte ${size}, after its end-of-archive marker`));
  });

  it('then one non-zero byte after some zero padding is refused', () =>
    expectRefused(copy(response, (f) => appendAfterMarker(f, Buffer.concat([Buffer.alloc(700), Buffer.from('x')]))), /data at byte \d+, after its end-of-archive marker/));

  it('then zeros beyond the end of the marker\'s record are refused', () =>
    expectRefused(copy(response, (f) => padToRecord(f, 512)), /more than \d+ bytes of zeros after its end-of-archive marker/));

  it('then a zero block followed by a member (one zero block is no marker) is refused', () =>
    expectRefused(
      copy(response, (f) => writeFileSync(f, Buffer.concat([tarBytes(members(f)).subarray(0, -1024), Buffer.alloc(512), smuggled('acks.ndjson.gz', '{}\n')]))),
      /zero block at byte \d+ is followed by data/,
    ));
});

describe('when a usage bundle reaches the upstream with a second reports member after its marker', () => {
  it('then the upstream refuses it and counts nothing', async () => {
    const before = upstreamSnapshot();
    const file = copy(usage, (f) => appendAfterMarker(f, smuggled('reports.ndjson.gz', '{"reportRef":1}\n')));
    await expect(s.up.process(file, true)).rejects.toMatchObject({ code: 'trailing_data' });
    expect(upstreamSnapshot()).toEqual(before);
  });
});

describe('when the bundle is padded with zeros to the end of its record, as tar writes it', () => {
  it('then it is read as the bundle it is, and applies', async () => {
    const file = copy(response, (f) => padToRecord(f));
    expect(statSync(file).size % 10_240).toBe(0);
    const r = await s.importFile(file);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.acks.accepted).toBe(1);
  });
});
