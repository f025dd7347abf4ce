import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { enroll, startSite, startUpstream, type Site } from '../helpers/exchange.js';
import { members, rewritePayload, writeTar } from '../helpers/tar-craft.js';
import { streamPayloadLines, verifyBundle } from '../../src/exchange/read.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { nextKey } from '../../src/identity/identity.js';
import { writeBundle } from '../../src/exchange/write.js';
import { fingerprint } from '../../src/shared/ed25519.js';
import { newId } from '../../src/shared/ids.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
});
afterEach(() => s.close());

describe('the reference upstream refuses', () => {
  it('when an enrollment request names a collector id that is a path (x/../../..), then malformed_manifest, and nothing is written outside its folder', async () => {
    const key = nextKey();
    const keyId = fingerprint(key.publicKey);
    const evil = join(s.h.dir, 'escape');
    const request = await writeBundle(
      join(s.h.dir, 'evil-request.opb'),
      {
        kind: 'enrollment-request', bundleId: newId('bun', Date.now()), collectorId: `col_x/../../../../..${evil}`, accountId: '',
        sequence: 0, lastAnsweredHash: null, answers: null, period: null, createdAt: new Date().toISOString(), eventChainHead: null,
        meta: { publicKey: key.publicKey.toString('base64'), accountName: 'ACME' },
      },
      [],
      { keyId, sign: (b) => key.signDetached(b) },
    );
    await expect(s.up.service.addCollector(request.path, { account: 'ACME', fingerprint: keyId })).rejects.toMatchObject({ code: 'malformed_manifest' });
    expect(existsSync(`${evil}.opb`)).toBe(false);
    expect(readdirSync(s.h.dir).filter((f) => f.startsWith('escape'))).toEqual([]);
  });

  it('when a usage bundle comes from a collector it never enrolled, then unknown_collector', async () => {
    const stranger = await startHarness();
    try {
      const d = await stranger.registered();
      await d.sendReport(d.report(TAG, 1));
      const exp = (await stranger.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
      await expect(s.up.process(exp.file)).rejects.toMatchObject({ code: 'unknown_collector' });
    } finally {
      await stranger.close();
    }
  });

  it("when a bundle is bound to another account than the collector's, then wrong_account", async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    s.up.service.account('Other Corp', true);
    const other = s.up.service.account('Other Corp', false);
    s.up.service.db.prepare('UPDATE collectors SET account_id = ?').run(other.id);
    await expect(s.up.process((await s.exportNow()).file)).rejects.toMatchObject({ code: 'wrong_account' });
  });

  it('when one report line deep in a signed usage bundle is malformed, then the reports read before it are rolled back too', async () => {
    const d = await s.h.registered();
    for (const id of ['m1', 'm2', 'm3']) await d.sendReport(d.report(TAG, 1, undefined, id));
    const file = (await s.exportNow()).file;
    // Break the last line; the manifest is made to agree and signed with the collector's own key.
    rewritePayload(file, file, 'reports.ndjson.gz', (lines) => [...lines.slice(0, 2), lines[2]!.slice(0, 40)], (b) => s.h.services.identity.signDetached(b));

    const count = () => (s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
    await expect(s.up.process(file)).rejects.toMatchObject({ code: 'malformed_payload', message: expect.stringContaining('line 3') });
    expect(count()).toBe(0);
    expect(s.up.service.collector(s.h.services.identity.collectorId)!.usage_hwm).toBe(0);
    // The genuine bundle, exported again, is counted in full.
    expect((await s.up.process((await s.exportNow()).file)).reports).toMatchObject({ accepted: 3, new: 3 });
    expect(count()).toBe(3);
  });

  it('when a signed bundle holds a line longer than any record, then it is refused before it fills memory', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const file = (await s.exportNow()).file;
    rewritePayload(file, file, 'reports.ndjson.gz', (lines) => [...lines, 'x'.repeat(65 << 20)], (b) => s.h.services.identity.signDetached(b));
    await expect(s.up.process(file)).rejects.toMatchObject({ code: 'malformed_payload', message: expect.stringContaining('longer than') });
    expect((s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n).toBe(0);
  });

  it('when a bundle changes between its verification and its reading, then the reading refuses it', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const file = (await s.exportNow()).file;
    const v = await verifyBundle(file, { kinds: ['usage'], keyFor: () => s.h.services.identity.publicKey });
    // One byte of the payload changes after it was verified: the second pass, which hashes and
    // decompresses again, must notice it rather than trust the first.
    const ms = members(file);
    const reports = ms.find((m) => m.name === 'reports.ndjson.gz')!;
    reports.data = Buffer.from(reports.data);
    reports.data[reports.data.length - 5] = reports.data[reports.data.length - 5]! ^ 1; // the gzip trailer's length field
    writeTar(file, ms);
    const seen: string[] = [];
    await expect(streamPayloadLines(file, v.manifest, 'reports.ndjson.gz', (lines) => void seen.push(...lines))).rejects.toMatchObject({ code: 'payload_mismatch' });
  });

  it('when an enrollment fingerprint does not match, then nothing is pinned', async () => {
    const h2: Harness = await startHarness();
    const up2 = startUpstream();
    try {
      const req = await h2.services.exchange.enrollment.request('ACME', 'test');
      await expect(up2.service.addCollector(req.file, { account: 'ACME', fingerprint: '0000:0000:0000:0000:0000:0000:0000:0000' })).rejects.toMatchObject({ code: 'fingerprint_mismatch' });
      expect((up2.service.db.prepare('SELECT count(*) AS n FROM collectors').get() as { n: number }).n).toBe(0);
      const unconfirmed = await up2.service.addCollector(req.file, { account: 'ACME' });
      expect(unconfirmed).toMatchObject({ pinned: false, fingerprint: req.fingerprint });
      // And on the collector's side: an upstream key is pinned only with its fingerprint confirmed.
      const added = await up2.service.addCollector(req.file, { account: 'ACME', fingerprint: req.fingerprint });
      await expect(h2.services.exchange.enrollment.trust(added.responseFile!, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'test')).rejects.toMatchObject({ code: 'fingerprint_mismatch' });
      expect(h2.services.exchange.state.upstreamKeys()).toHaveLength(0);
    } finally {
      up2.close();
      await h2.close();
    }
  });
});

describe('reports the upstream cannot accept', () => {
  it('when a device belongs to another account, then its reports are rejected with that reason', async () => {
    // A second site, in another account, reports the same device first.
    const other = await startHarness();
    try {
      await enroll(other, s.up, 'Other Corp');
      s.up.service.addEntitlement({ account: 'Other Corp', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
      const theirs = await other.registered('FOC-SHARED');
      await theirs.sendReport(theirs.report(TAG, 1));
      const e = (await other.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
      await s.up.process(e.file);

      const ours = await s.h.registered('FOC-SHARED');
      await ours.sendReport(ours.report(TAG, 1));
      const r = await s.up.process((await s.exportNow()).file);
      expect(r.reports).toMatchObject({ accepted: 0, rejected: 1 });
      const imp = await s.importFile(r.responseFile);
      expect(imp.body.acks.rejected).toBe(1);
      const alert = (await s.h.api.get('/api/v1/alerts?kind=report_rejected')).body.items[0];
      expect(alert.message).toContain('belongs to another account');
    } finally {
      await other.close();
    }
  });

  it('when a bundle of many reports is processed twice, then the second time counts none of them again', async () => {
    // More reports than one multi-row statement holds, so both write paths run.
    const devices = await Promise.all([s.h.registered(), s.h.registered()]);
    for (let i = 0; i < 40; i++) await devices[i % 2]!.sendReport(devices[i % 2]!.report(TAG, 1 + (i % 3), undefined, `many-${i}`));
    const first = await s.up.process((await s.exportNow()).file);
    expect(first.reports).toMatchObject({ accepted: 40, new: 40, replaced: 0, alreadyCounted: 0 });
    const again = await s.up.process((await s.exportNow()).file); // the first response was never imported
    expect(again.reports).toMatchObject({ accepted: 40, new: 0, replaced: 0, alreadyCounted: 40 });
    const rows = s.up.service.db.prepare('SELECT udi, report_id, measurements FROM reports ORDER BY report_id').all() as { report_id: string }[];
    expect(rows).toHaveLength(40);
    expect(new Set(rows.map((r) => r.report_id)).size).toBe(40);
  });

  it('when two collectors of one account carry the same RUM report, then it is counted once', async () => {
    const second = await startHarness();
    try {
      await enroll(second, s.up, 'ACME');
      const { rumElement } = await import('../helpers/rum.js');
      const t = 1_700_000_000;
      const xml = rumElement({ pid: 'C9300-24T', serial: 'FOCTWICE', reportId: 5, tag: TAG, measurements: [{ start: t, end: t + 86_400, count: 2 }] });
      for (const h of [s.h, second]) {
        await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(xml).expect(200);
      }
      await s.up.process((await s.exportNow()).file);
      const r2 = await s.up.process((await second.api.post('/api/v1/exchange/export').send({}).expect(200)).body.file);
      expect(r2.reports).toMatchObject({ accepted: 1, new: 0, alreadyCounted: 1 });
      expect((s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n).toBe(1);
    } finally {
      await second.close();
    }
  });
});
