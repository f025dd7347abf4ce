import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { portalAck } from '../helpers/portal-ack.js';
import { ManualClock } from '../../src/shared/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';

let site: Site | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await site?.close();
  await h?.close();
  site = h = undefined;
});

const element = (serial: string, reportId: number, periods = 1, endSec = Math.floor(Date.now() / 1000) - 60) =>
  rumElement({
    pid: 'C9300-24T', serial, reportId, tag: TAG,
    measurements: Array.from({ length: periods }, (_, i) => ({ start: endSec - (periods - i) * 3600, end: endSec - (periods - i - 1) * 3600, count: 2 })),
  });

const importRum = (x: Harness, ...elements: string[]) =>
  x.api.post(`/api/v1/usage/rum?vaId=${x.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(...elements)).expect(200);

/** Each report of a device, with where it stands per destination, as the API shows it. */
async function standing(x: Harness, serial: string) {
  const deviceId = x.services.db.prepare('SELECT id FROM devices WHERE udi_serial = ?').pluck().get(serial) as string;
  const items = (await x.api.get(`/api/v1/devices/${deviceId}/reports`).expect(200)).body.items as {
    reportId: string; settled: boolean; acknowledgements: { destination: string; state: string }[];
  }[];
  return items.map((r) => ({ reportId: r.reportId, settled: r.settled, states: Object.fromEntries(r.acknowledgements.map((a) => [a.destination, a.state])) }));
}

describe('acknowledgement per destination', () => {
  it('when a RUM report is acknowledged by the Outpost upstream, then it still waits for the portal, and is settled only once the portal has acknowledged it too', async () => {
    site = await startSite();
    const x = site.h;
    await importRum(x, element('DEST-A', 1), element('DEST-A', 2));
    const d = await x.registered();
    await d.sendReport(d.report(TAG, 1));
    expect(await standing(x, 'DEST-A')).toEqual([
      { reportId: 'C9300-24T:DEST-A:2', settled: false, states: { outpost: 'waiting', portal: 'waiting' } },
      { reportId: 'C9300-24T:DEST-A:1', settled: false, states: { outpost: 'waiting', portal: 'waiting' } },
    ]);
    // A device's own signed report goes to the Outpost upstream alone.
    expect((await standing(x, d.udi.serial))[0]).toMatchObject({ settled: false, states: { outpost: 'waiting' } });

    // The Outpost upstream answers: its destination is settled, the portal's is not.
    const processed = await site.up.process((await site.exportNow()).file);
    expect((await site.importFile(processed.responseFile)).status).toBe(200);
    const afterUpstream = await standing(x, 'DEST-A');
    expect(afterUpstream.map((r) => r.states.portal)).toEqual(['waiting', 'waiting']);
    expect(afterUpstream.every((r) => !r.settled && r.states.outpost !== 'waiting')).toBe(true);
    expect((await standing(x, d.udi.serial))[0]!.settled).toBe(true);
    // Each destination's export reads its own waits: the next usage bundle carries nothing, the portal's upload both.
    expect((await site.exportNow()).reports).toBe(0);
    const upload = (await x.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    expect(upload).toMatchObject({ devices: 1, reports: 2 });
    const status = (await x.api.get('/api/v1/exchange/status').expect(200)).body;
    expect(status.destinations).toEqual([
      { destination: 'outpost', waiting: 0, oldestWaitingSince: null },
      { destination: 'portal', waiting: 2, oldestWaitingSince: expect.any(String) },
    ]);

    // The portal answers: settled everywhere, and counted once.
    const r = (await x.api.post('/api/v1/cisco/import-ack').send({ file: portalAck(upload.file).file }).expect(200)).body;
    expect(r.reportsAcknowledged).toBe(2);
    expect((await standing(x, 'DEST-A')).map((s) => [s.settled, s.states.portal])).toEqual([[true, 'accepted'], [true, 'accepted']]);
    expect(x.services.destinations.unsettled()).toBe(0);
    expect(x.count('SELECT count(*) FROM report_acks')).toBe(5); // 2 RUM × 2 destinations + 1 device report × 1
  });

  it('when a report grows after the portal upload was written, then the ACK of that upload does not settle the grown copy, and the next upload carries it', async () => {
    h = await startHarness();
    const end = Math.floor(Date.now() / 1000) - 7200;
    await importRum(h, element('GROW-A', 1, 1, end), element('GROW-A', 2, 1, end));
    const first = (await h.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    expect(first.reports).toBe(2);
    // Report 1 grows (one more period) before the portal's answer comes back; report 2 does not.
    await importRum(h, element('GROW-A', 1, 2, end + 3600));
    const r = (await h.api.post('/api/v1/cisco/import-ack').send({ file: portalAck(first.file).file }).expect(200)).body;
    expect(r.reportsAcknowledged).toBe(1);
    expect(await standing(h, 'GROW-A')).toEqual([
      { reportId: 'C9300-24T:GROW-A:2', settled: false, states: { outpost: 'waiting', portal: 'accepted' } },
      { reportId: 'C9300-24T:GROW-A:1', settled: false, states: { outpost: 'waiting', portal: 'waiting' } },
    ]);
    const second = (await h.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    expect(second).toMatchObject({ devices: 1, reports: 1 });
  });

  it('when RUM reports have waited for the portal longer than the ACK policy allows, then an overdue alert says so, and the portal ACK clears it', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    await importRum(h, element('LATE-A', 1));
    const overdue = async () => (await h!.api.get('/api/v1/alerts?kind=ack_overdue').expect(200)).body.items as { subject: string; message: string }[];
    clock.advance(91 * DAY);
    await h.api.post('/api/v1/alerts/evaluate').expect(200);
    const [a] = await overdue();
    expect(a).toMatchObject({ subject: 'portal' });
    expect(a!.message).toContain('no upload has been written: run outpost cisco export');

    const upload = (await h.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    await h.api.post('/api/v1/alerts/evaluate').expect(200);
    expect((await overdue())[0]!.message).toContain('import the portal\'s answer with outpost cisco import-ack');
    await h.api.post('/api/v1/cisco/import-ack').send({ file: portalAck(upload.file).file }).expect(200);
    await h.api.post('/api/v1/alerts/evaluate').expect(200);
    expect(await overdue()).toEqual([]);
  });

  it('when a site does not use the portal, then RUM reports wait for the Outpost upstream alone and the portal upload is refused; when it starts using it, the reports the portal has not acknowledged wait for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const start = (portal: boolean) =>
      buildServices(
        loadConfig({ env: {}, overrides: { dataDir: join(dir, 'data'), exchange: { bundleDir: join(dir, 'bundles') }, cisco: { portal } } as never }),
        { logger: createLogger('error', true) },
      );
    try {
      let s = start(false);
      const va = s.accounts.list()[0]!.id;
      await s.rum.import(Buffer.from(smartLicense(element('PLAN-A', 1), element('PLAN-A', 2))), {
        vaId: va, actor: 'test', skipInvalid: false, maxElements: 10, maxFutureSkewMs: DAY, staleAfterDays: 90,
      });
      const waits = () => s.db.prepare('SELECT destination, count(*) AS n FROM report_pending GROUP BY destination ORDER BY destination').all();
      expect(waits()).toEqual([{ destination: 'outpost', n: 2 }]);
      await expect(s.cisco.portal.export('test')).rejects.toMatchObject({ status: 409, code: 'portal_not_used' });
      await s.ingest.drain();
      s.db.close();

      s = start(true);
      expect(waits()).toEqual([{ destination: 'outpost', n: 2 }, { destination: 'portal', n: 2 }]);
      expect((await s.cisco.portal.export('test')).reports).toBe(2);
      await s.ingest.drain();
      s.db.close();

      // Stopping again: nothing waits for the portal any more.
      s = start(false);
      expect(waits()).toEqual([{ destination: 'outpost', n: 2 }]);
      await s.ingest.drain();
      s.db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
