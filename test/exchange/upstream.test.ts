import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { enroll, startSite, startUpstream, type Site } from '../helpers/exchange.js';
import { members, writeTar } from '../helpers/tar-craft.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
});
afterEach(() => s.close());

describe('the reference upstream refuses', () => {
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
    // Break the last line, then make the manifest agree with the new payload and sign it with
    // the collector's own key: only reading the records can find the fault.
    const ms = members(file);
    const reports = ms.find((m) => m.name === 'reports.ndjson.gz')!;
    const lines = gunzipSync(reports.data).toString('utf8').trimEnd().split('\n');
    lines[2] = lines[2]!.slice(0, 40);
    reports.data = gzipSync(lines.join('\n') + '\n');
    const manifest = JSON.parse(ms[0]!.data.toString('utf8'));
    const listed = manifest.payloads.find((p: { name: string }) => p.name === 'reports.ndjson.gz');
    listed.size = reports.data.length;
    listed.sha256 = createHash('sha256').update(reports.data).digest('hex');
    ms[0]!.data = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    ms[1]!.data = s.h.services.identity.signDetached(ms[0]!.data);
    writeTar(file, ms);

    const count = () => (s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
    await expect(s.up.process(file)).rejects.toMatchObject({ code: 'malformed_payload', message: expect.stringContaining('line 3') });
    expect(count()).toBe(0);
    expect(s.up.service.collector(s.h.services.identity.collectorId)!.usage_hwm).toBe(0);
    // The genuine bundle, exported again, is counted in full.
    expect((await s.up.process((await s.exportNow()).file)).reports).toMatchObject({ accepted: 3, new: 3 });
    expect(count()).toBe(3);
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
