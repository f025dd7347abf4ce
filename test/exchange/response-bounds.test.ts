import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { rewritePayload } from '../helpers/tar-craft.js';

let s: Site;
let response: string;
let snapshot: () => unknown;

beforeAll(async () => {
  // Small limits through config: the attack's shape, not its full size.
  s = await startSite({ exchange: { maxResponseBytes: 4 << 20, maxResponseRatio: 50 } });
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
  const d = await s.h.registered();
  await d.sendReport(d.report(TAG, 2));
  response = (await s.up.process((await s.exportNow()).file)).responseFile;
  snapshot = () =>
    ['SELECT * FROM report_pending', 'SELECT * FROM report_acks', 'SELECT * FROM entitlements', 'SELECT * FROM bundles', "SELECT * FROM meta WHERE key != 'time_floor'"]
      .map((q) => s.h.services.db.prepare(q).all());
});
afterAll(() => s.close());

let n = 0;
/** The real response with its ACK payload replaced, signed again with the real upstream key. */
function signedWith(lines: () => string[]): string {
  const out = join(s.h.dir, `bounded-${++n}.opb`);
  rewritePayload(response, out, 'acks.ndjson.gz', lines, (m) => s.up.service.identity.signDetached(m));
  return out;
}

async function refused(file: string, code: string, words: string) {
  const before = snapshot();
  const r = await s.importFile(file);
  expect([r.status, r.body.error?.code], JSON.stringify(r.body).slice(0, 300)).toEqual([400, code]);
  expect(r.body.error.message).toContain(words);
  expect(snapshot()).toEqual(before);
  // Nothing extracted is left behind either.
  expect(readdirSync(s.h.config.exchange.bundleDir).filter((f) => f.startsWith('.import-'))).toEqual([]);
}

describe('a validly signed response that inflates without bound', () => {
  it('when a payload inflates far past its compressed size (a gzip bomb), then payload_too_large names the ratio, and nothing changes', async () => {
    await refused(signedWith(() => Array.from({ length: 64 }, () => ' '.repeat(64 * 1024))), 'payload_too_large', 'exchange.maxResponseRatio');
  });

  it('when its payloads together inflate past exchange.maxResponseBytes, then payload_too_large names it', async () => {
    await refused(signedWith(() => Array.from({ length: 6 * 1024 }, () => randomBytes(768).toString('base64'))), 'payload_too_large', 'exchange.maxResponseBytes');
  });

  it('when one line is longer than a response line may be, then malformed_payload, and nothing changes', async () => {
    await s.close(); // a fresh site with room for the bytes, so only the line bound can refuse
    s = await startSite({ exchange: { maxResponseBytes: 64 << 20, maxResponseRatio: 50 } });
    s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 2));
    response = (await s.up.process((await s.exportNow()).file)).responseFile;
    await refused(signedWith(() => [randomBytes(13 << 20).toString('base64')]), 'malformed_payload', 'longer than');
  });

  it('when the response is ordinary, then it still applies under the same limits', async () => {
    const r = await s.importFile(response);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
});
