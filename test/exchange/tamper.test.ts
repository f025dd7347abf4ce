import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, startUpstream, type Site } from '../helpers/exchange.js';
import { dataOffset, flipAt, members, writeTar, type Member } from '../helpers/tar-craft.js';

let s: Site;
let response: string;
let snapshot: () => unknown;

beforeAll(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
  const d = await s.h.registered();
  await d.sendReport(d.report(TAG, 2));
  await d.sendReport(d.report(TAG, 1));
  response = (await s.up.process((await s.exportNow()).file)).responseFile;
  // Everything an import could change, to compare before and after a refusal.
  snapshot = () =>
    ['SELECT * FROM report_pending', 'SELECT * FROM report_acks', 'SELECT * FROM entitlements', 'SELECT * FROM bundles', "SELECT * FROM meta WHERE key != 'time_floor'", 'SELECT id, name, origin FROM virtual_accounts']
      .map((q) => s.h.services.db.prepare(q).all());
});
afterAll(() => s.close());

let n = 0;
const variant = (fn: (file: string) => void): string => {
  const file = join(s.h.dir, `tampered-${++n}.opb`);
  copyFileSync(response, file);
  fn(file);
  return file;
};
const rewrite = (edit: (m: Member[]) => Member[]) => variant((f) => writeTar(f, edit(members(f))));
const upstreamSign = (manifest: Buffer) => s.up.service.identity.signDetached(manifest);
/** A manifest edited and signed again with the real upstream key: only the parser can refuse it. */
const resigned = (edit: (text: string) => string) =>
  rewrite((ms) => {
    const text = Buffer.from(edit(ms[0]!.data.toString('utf8')));
    return [{ name: 'manifest.json', data: text }, { name: 'manifest.sig', data: upstreamSign(text) }, ...ms.slice(2)];
  });

async function expectRefused(file: string, code: string) {
  const before = snapshot();
  const r = await s.importFile(file);
  expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
  expect(r.body.error.code).toBe(code);
  expect(r.body.error.message.length).toBeGreaterThan(10);
  expect(snapshot()).toEqual(before);
}


describe('when one byte of a response bundle is flipped', () => {
  it('then a flipped manifest byte fails the signature', () => expectRefused(variant((f) => flipAt(f, dataOffset(f, 'manifest.json') + 40)), 'bad_signature'));
  it('then a flipped signature byte fails the signature', () => expectRefused(variant((f) => flipAt(f, dataOffset(f, 'manifest.sig') + 5)), 'bad_signature'));
  for (const payload of ['acks.ndjson.gz', 'entitlements.ndjson.gz', 'policy.ndjson.gz', 'va-confirmations.ndjson.gz']) {
    it(`then a flipped byte in ${payload} fails its hash`, () => expectRefused(variant((f) => flipAt(f, dataOffset(f, payload) + 12)), 'payload_mismatch'));
  }
  it('then a flipped tar header byte fails the header checksum', () => expectRefused(variant((f) => flipAt(f, 3)), 'malformed_archive'));
});

describe('when a response bundle is truncated', () => {
  for (const cut of [100, 700, 1500]) {
    it(`then cut to ${cut} bytes it is refused as truncated`, () =>
      expectRefused(variant((f) => writeFileSync(f, readFileSync(f).subarray(0, cut))), 'truncated'));
  }
  it('then cut before the end-of-archive marker it is refused as truncated', () =>
    expectRefused(variant((f) => writeFileSync(f, readFileSync(f).subarray(0, readFileSync(f).length - 1024))), 'truncated'));
});

describe('when an archive is crafted', () => {
  it('then a member the manifest does not list is refused', () =>
    expectRefused(rewrite((ms) => [...ms, { name: 'extra.ndjson.gz', data: gzipSync('{}\n') }]), 'unlisted_member'));
  it('then two members with one name are refused', () => expectRefused(rewrite((ms) => [...ms, ms[2]!]), 'duplicate_member'));
  it('then a member that is not a regular file (a symlink) is refused', () =>
    expectRefused(rewrite((ms) => [...ms.slice(0, 2), { name: 'evil', data: Buffer.alloc(0), type: '2' }, ...ms.slice(2)]), 'not_regular_file'));
  it('then an absolute path is refused', () =>
    expectRefused(rewrite((ms) => [...ms.slice(0, 2), { ...ms[2]!, name: '/etc/acks.ndjson.gz' }, ...ms.slice(3)]), 'unsafe_path'));
  it('then a ".." path is refused', () =>
    expectRefused(rewrite((ms) => [...ms.slice(0, 2), { ...ms[2]!, name: '../acks.ndjson.gz' }, ...ms.slice(3)]), 'unsafe_path'));
  it('then a name overridden by an extended (pax) header is refused', () =>
    expectRefused(rewrite((ms) => [...ms.slice(0, 2), { name: 'PaxHeader', data: Buffer.from('30 path=acks.ndjson.gz\n'), type: 'x' }, ...ms.slice(2)]), 'extended_header'));
  it('then a GNU long-name header is refused', () =>
    expectRefused(rewrite((ms) => [{ name: '././@LongLink', data: Buffer.from('manifest.json\0'), type: 'L' }, ...ms]), 'extended_header'));
  it('then a manifest that is not the first member is refused', () => expectRefused(rewrite((ms) => [ms[1]!, ms[0]!, ...ms.slice(2)]), 'malformed_archive'));
  it('then a payload the manifest lists but the archive lacks is refused', () => expectRefused(rewrite((ms) => ms.slice(0, -1)), 'missing_payload'));
});

describe('when the manifest itself is wrong, even though correctly signed', () => {
  it('then JSON with duplicate keys is refused', () => expectRefused(resigned((t) => t.replace('"kind": "response",', '"kind": "response",\n  "kind": "usage",')), 'duplicate_keys'));
  it('then an unknown format version is refused', () => expectRefused(resigned((t) => t.replace('"formatVersion": 1', '"formatVersion": 3')), 'unknown_format'));
  it('then an unknown algorithm is refused', () => expectRefused(resigned((t) => t.replace('"algorithm": "ed25519"', '"algorithm": "rsa"')), 'unknown_algorithm'));
  it('then a usage bundle offered as a response is refused as the wrong kind', () => expectRefused(resigned((t) => t.replace('"kind": "response"', '"kind": "usage"')), 'wrong_kind'));
  it('then a record count that disagrees with the payload is refused', () =>
    expectRefused(resigned((t) => t.replace(/("name": "acks.ndjson.gz",\s+"size": \d+,\s+"records": )(\d+)/, (_m, a: string, b: string) => a + String(Number(b) + 1))), 'payload_mismatch'));
});

describe('when the signer is not the pinned upstream', () => {
  it('then a bundle signed by another upstream key is refused as an unknown signer', async () => {
    const other = startUpstream();
    const file = rewrite((ms) => {
      const text = Buffer.from(ms[0]!.data.toString('utf8').replace(s.up.service.identity.fingerprint, other.service.identity.fingerprint));
      return [{ name: 'manifest.json', data: text }, { name: 'manifest.sig', data: other.service.identity.signDetached(text) }, ...ms.slice(2)];
    });
    other.close();
    await expectRefused(file, 'unknown_signer');
  });

  it('then a response for another collector is refused', () =>
    expectRefused(resigned((t) => t.replace(/"collectorId": "[^"]+"/, '"collectorId": "col_0000aaaa-bbbb-cccc-dddd-eeeeffff0000"')), 'wrong_collector'));
  it('then a response bound to another account is refused', () =>
    expectRefused(resigned((t) => t.replace(/"accountId": "[^"]+"/, '"accountId": "acc_0000aaaa-bbbb-cccc-dddd-eeeeffff0000"')), 'wrong_account'));

  it('then a collector id that could name a path (x/../../..) is refused before anything uses it', () =>
    expectRefused(resigned((t) => t.replace(/"collectorId": "[^"]+"/, '"collectorId": "col_x/../../../../tmp/evil"')), 'malformed_manifest'));
});

describe('after all those refusals', () => {
  it('then the genuine response still applies', async () => {
    const r = await s.importFile(response);
    expect(r.status).toBe(200);
    expect(r.body.acks.accepted).toBe(2);
    const digest = createHash('sha256').update(readFileSync(response)).digest('hex');
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
  });
});
