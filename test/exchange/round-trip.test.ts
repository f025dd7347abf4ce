import { readFileSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG, TAG2 } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
});
afterEach(() => s.close());

const pending = () => s.h.count('SELECT count(*) FROM report_pending');
const upstreamReports = () => (s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
const buy = (quantity: number, tag = TAG) =>
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag, displayName: 'DNA Network Stack', kind: 'subscription', quantity, startsAt: Date.now() - 86_400_000, endsAt: Date.now() + 365 * 86_400_000 });

describe('a full round trip', () => {
  it('when devices report and the bundles go up and come back, then compliance and device ACKs are updated', async () => {
    buy(5);
    const a = await s.h.registered();
    const b = await s.h.registered();
    await a.sendReport(a.report(TAG, 4, undefined, 'a1'));
    await b.sendReport(b.report(TAG, 3, undefined, 'b1'));
    expect((await s.h.api.get(`/api/v1/virtual-accounts/${s.h.defaultVa}/compliance`)).body.tags[0].status).toBe('not_authorized');

    const exp = await s.exportNow();
    expect(exp).toMatchObject({ reports: 2, sequence: 1, period: '2026-11' });
    const processed = await s.up.process(exp.file);
    expect(processed.reports).toMatchObject({ accepted: 2, rejected: 0, new: 2 });
    const imp = await s.importFile(processed.responseFile);
    expect(imp.status).toBe(200);
    expect(imp.body).toMatchObject({ status: 'applied', acks: { accepted: 2, rejected: 0 }, entitlements: { applied: 1 }, policy: 'applied' });

    const comp = (await s.h.api.get(`/api/v1/virtual-accounts/${s.h.defaultVa}/compliance`)).body.tags[0];
    expect(comp).toMatchObject({ status: 'shortage', owned: 5, inUse: 7, short: 2 });
    const va = (await s.h.api.get(`/api/v1/virtual-accounts/${s.h.defaultVa}`)).body;
    expect(va.origin).toBe('upstream'); // the proposal was confirmed (and adopted the upstream's lines)
    const acks = await a.send('GET', '/device/v1/acks', '');
    expect(acks.body).toMatchObject({ pending: 0, acks: [{ reportId: 'a1', status: 'accepted' }] });
    expect(pending()).toBe(0);
    expect((await s.h.api.get('/api/v1/alerts?kind=export_ready')).body.items).toHaveLength(0);

    // The next export carries only what is new.
    await a.sendReport(a.report(TAG, 4, undefined, 'a2'));
    expect((await s.exportNow()).reports).toBe(1);
  });

  it('when the same response is imported twice, then the second time is a no-op that says so', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    buy(1);
    const r = await s.up.process((await s.exportNow()).file);
    expect((await s.importFile(r.responseFile)).body.status).toBe('applied');
    const again = await s.importFile(r.responseFile);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('already_imported');
  });

  it('when the upstream rejects a report, then it is final: not sent again, and an alert names the reason', async () => {
    buy(10, TAG);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'ok-1'));
    await d.sendReport(d.report(TAG2, 1, undefined, 'unknown-tag-1'));
    const r = await s.up.process((await s.exportNow()).file);
    expect(r.reports).toMatchObject({ accepted: 1, rejected: 1 });
    const imp = (await s.importFile(r.responseFile)).body;
    expect(imp.acks).toMatchObject({ accepted: 1, rejected: 1 });
    const row = s.h.services.db
      .prepare("SELECT a.status, a.reason FROM report_acks a JOIN reports r ON r.id = a.report_id WHERE r.report_id = 'unknown-tag-1'")
      .get() as { status: string; reason: string };
    expect(row.status).toBe('rejected');
    expect(row.reason).toContain('unknown entitlement tag');
    const alert = (await s.h.api.get('/api/v1/alerts?kind=report_rejected')).body.items[0];
    expect(alert.message).toContain('unknown entitlement tag');
    expect((await s.exportNow()).reports).toBe(0);
    const acks = await d.send('GET', '/device/v1/acks', '');
    expect(acks.body.acks.find((a: { reportId: string }) => a.reportId === 'unknown-tag-1')).toMatchObject({ status: 'rejected', reason: expect.stringContaining('unknown') });
  });
});

describe('bundles that are lost, late, replayed or forced', () => {
  it('when a bundle is lost, then the next one holds everything, and the upstream counts nothing twice', async () => {
    buy(10);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'r1'));
    const lost = await s.exportNow();
    rmSync(lost.file); // it fell off the truck
    await d.sendReport(d.report(TAG, 2, undefined, 'r2'));
    const second = await s.exportNow();
    expect(second.reports).toBe(2);
    const r = await s.up.process(second.file);
    expect(r.reports).toMatchObject({ accepted: 2, new: 2 });
    expect((await s.importFile(r.responseFile)).body.acks.accepted).toBe(2);
    expect(upstreamReports()).toBe(2);
  });

  it('when a usage bundle is processed twice, then the second gets the first response, and forced it counts nothing twice', async () => {
    buy(10);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    await d.sendReport(d.report(TAG, 2));
    const exp = await s.exportNow();
    const first = await s.up.process(exp.file);
    const again = await s.up.process(exp.file);
    expect(again).toMatchObject({ alreadyProcessed: true, responseFile: first.responseFile, responseSequence: first.responseSequence, reports: first.reports });
    expect(readFileSync(again.responseFile)).toEqual(readFileSync(first.responseFile));
    // An older bundle that was never processed is still a replay.
    await d.sendReport(d.report(TAG, 3));
    const older = await s.exportNow();
    await s.up.process((await s.exportNow()).file);
    await expect(s.up.process(older.file)).rejects.toMatchObject({ code: 'replay' });
    const forced = await s.up.process(exp.file, true);
    expect(forced.reports).toMatchObject({ accepted: 2, new: 0, alreadyCounted: 2 });
    expect(upstreamReports()).toBe(3);
    const ev = s.up.service.db.prepare("SELECT count(*) AS n FROM events WHERE type = 'usage.processed_forced'").get() as { n: number };
    expect(ev.n).toBe(1);
  });

  it('when a response arrives after a newer export, then it is accepted', async () => {
    buy(10);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'early'));
    const first = await s.exportNow();
    await d.sendReport(d.report(TAG, 2, undefined, 'late'));
    await s.exportNow(); // a second export, written before the first is answered
    const r1 = await s.up.process(first.file);
    const imp = await s.importFile(r1.responseFile);
    expect(imp.status).toBe(200);
    expect(imp.body.acks.accepted).toBe(1);
    expect(pending()).toBe(1); // 'late' still waits for its answer
  });

  it('when an older response arrives after a newer one was applied, then it is refused, and forced it applies only its ACKs', async () => {
    buy(10);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'one'));
    const e1 = await s.exportNow();
    buy(20); // a second purchase: snapshot version 2
    await d.sendReport(d.report(TAG, 2, undefined, 'two'));
    const e2 = await s.exportNow();
    const r1 = await s.up.process(e1.file);
    const r2 = await s.up.process(e2.file);
    expect((await s.importFile(r2.responseFile)).body.entitlements.applied).toBe(1);
    const owned = async () => (await s.h.api.get(`/api/v1/virtual-accounts/${s.h.defaultVa}/compliance`)).body.tags[0].owned;
    expect(await owned()).toBe(30);

    const refused = await s.importFile(r1.responseFile);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('replay');
    const forced = await s.importFile(r1.responseFile, true);
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ status: 'applied', forced: true, entitlements: { applied: 0 }, policy: 'none' });
    expect(await owned()).toBe(30); // the older snapshot was not applied over the newer
    const events = (await s.h.api.get('/api/v1/events?type=exchange.forced')).body.items;
    expect(events).toHaveLength(1);
  });

  it('when a response answers an older export than one already answered, then it is refused as out of order', async () => {
    buy(10);
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    const e1 = await s.exportNow();
    const e2 = await s.exportNow();
    const r2 = await s.up.process(e2.file);
    const r1 = await s.up.process(e1.file, true); // the upstream answers the older one later (forced: it is below its mark)
    expect((await s.importFile(r2.responseFile)).status).toBe(200);
    const late = await s.importFile(r1.responseFile);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('out_of_order');
  });
});
