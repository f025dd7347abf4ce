import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { tarBytes } from '../helpers/tar-craft.js';
import { tempDir } from '../helpers/temp.js';
import { applyAll, mutationsArb, type Mutation } from './mutate.js';
import { changes, snapshot } from './snapshot.js';
import { check, runs, timeout } from './run.js';

/*
 * The readers of files from outside, fuzzed with mutants of real files: a response bundle the
 * upstream made, RUM XML as IOS-XE writes it, an ACK archive as the portal sends it. A mutant
 * is refused with a clear code and nothing written, or (for a change the format does not
 * protect, such as a byte of tar padding or a RUM count) read as a file of its kind; never a 5xx.
 * Mutants that cannot be read as one (cut short, random bytes) must be refused.
 */

type Res = { status: number; body: any; headers: Record<string, string> };

async function expectSafe(h: Harness, what: string, res: Res, before: Record<string, string>, mustRefuse: boolean): Promise<void> {
  const label = `${what} → ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`;
  expect(res.status, label).toBeLessThan(500);
  if (mustRefuse) expect(res.status, `${label}\nmust be refused`).toBeGreaterThanOrEqual(400);
  if (res.status >= 400) {
    expect(res.headers['content-type'] ?? '', label).toMatch(/^application\/json/);
    expect(res.body?.error?.code, label).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(changes(before, snapshot(h.services.db, h.config.exchange.bundleDir)), `${label}\nwrote`).toEqual({});
  }
  expect((await h.api.get('/healthz')).status, `${label}\nthe server stopped answering`).toBe(200);
}

/** Cut short or replaced by random bytes: no reader may take that for a file of its kind. */
const unreadable = (ms: Mutation[]) => ms.some((m) => m.op === 'random' || m.op === 'truncate');
let n = 0;

describe('the response-bundle reader, fuzzed with mutants of a real bundle', () => {
  let s: Site;
  let response: Buffer;
  beforeAll(async () => {
    s = await startSite();
    s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 2));
    response = readFileSync((await s.up.process((await s.exportNow()).file)).responseFile);
  });
  afterAll(() => s?.close());

  it('refuses each mutant it cannot trust, without a 5xx or a write', { timeout }, async () => {
    const dir = tempDir('fuzz-bundles');
    const property = fc.asyncProperty(mutationsArb, fc.boolean(), async (ms, gz) => {
      let bytes = applyAll(response, ms);
      if (gz) bytes = gzipSync(bytes);
      const file = join(dir, `mutant-${++n}.opb`);
      writeFileSync(file, bytes);
      const before = snapshot(s.h.services.db, s.h.config.exchange.bundleDir);
      const res = await s.h.api.post('/api/v1/exchange/import').send({ file });
      await expectSafe(s.h, `bundle ${JSON.stringify(ms).slice(0, 300)} gz=${gz}`, res, before, unreadable(ms) || gz);
    });
    await check('response bundles', property, runs(60, 5));
  });
});

describe('the RUM reader, fuzzed with mutants of IOS-XE RUM XML', () => {
  let h: Harness;
  let xml: Buffer;
  beforeAll(async () => {
    h = await startHarness({ config: { device: { staleAfterDays: 36_500 } } });
    const t = Math.floor(Date.now() / 1000);
    xml = Buffer.from(smartLicense(
      rumElement({ pid: 'C9300-24T', serial: 'FUZZ1', reportId: 1, tag: TAG, measurements: [{ start: t - 7200, end: t - 3600, count: 2 }] }),
      rumElement({ pid: 'C9300-24T', serial: 'FUZZ2', reportId: 2, tag: TAG, measurements: [{ start: t - 7200, end: t - 3600, count: 1 }] }),
    ));
  });
  afterAll(() => h?.close());

  it('refuses each mutant it cannot read, without a 5xx or a write', { timeout }, async () => {
    const property = fc.asyncProperty(mutationsArb, fc.boolean(), async (ms, skipInvalid) => {
      const body = applyAll(xml, ms);
      const before = snapshot(h.services.db, h.config.exchange.bundleDir);
      const res = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}&skipInvalid=${skipInvalid}`).set('content-type', 'application/xml').send(body);
      // Random bytes must be refused, and so must a file cut inside an element unless skipInvalid lets the whole ones in.
      const lastEnd = xml.lastIndexOf('</RUMReport>') + '</RUMReport>'.length;
      const cutInside = ms.length === 1 && ms[0]!.op === 'truncate' && body.length < lastEnd;
      await expectSafe(h, `RUM ${JSON.stringify(ms).slice(0, 300)} skipInvalid=${skipInvalid}`, res, before, ms.some((m) => m.op === 'random') || (!skipInvalid && cutInside));
    });
    await check('RUM XML', property, runs(150, 10));
  });
});

describe('the portal ACK reader, fuzzed with mutants of an ACK archive', () => {
  let h: Harness;
  let archive: Buffer;
  const TIME = '26Nov29_19_17_11_123';
  beforeAll(async () => {
    h = await startHarness();
    const ack = (data: string) => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<smartLicense><smartLicenseRumAck><data>${data}</data></smartLicenseRumAck></smartLicense>\n`);
    const inner = tarBytes([{ name: `ACK_dev_1_${TIME}.txt`, data: ack('QUNLLTE=') }, { name: `ACK_dev_2_${TIME}.txt`, data: ack('QUNLLTI=') }]);
    archive = gzipSync(tarBytes([{ name: 'manifest.mf', data: Buffer.from('Manifest-Version: 1.0\n') }, { name: `ACK_UD_VA_${TIME}.tar.gz`, data: gzipSync(inner) }]));
  });
  afterAll(() => h?.close());

  // This collector wrote no portal upload, so no archive, however well formed, may change anything.
  it('refuses every mutant, without a 5xx or a write', { timeout }, async () => {
    const dir = tempDir('fuzz-acks');
    const property = fc.asyncProperty(mutationsArb, async (ms) => {
      const file = join(dir, `ack-${++n}.tar.gz`);
      writeFileSync(file, applyAll(archive, ms));
      const before = snapshot(h.services.db, h.config.exchange.bundleDir);
      const res = await h.api.post('/api/v1/cisco/import-ack').send({ file });
      await expectSafe(h, `ACK ${JSON.stringify(ms).slice(0, 300)}`, res, before, true);
    });
    await check('portal ACK archives', property, runs(150, 10));
  });
});
