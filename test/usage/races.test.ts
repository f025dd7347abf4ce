import { afterEach, describe, expect, it } from 'vitest';
import { DAY, poolFailures, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { HeldVerifier } from '../helpers/verifiers.js';
import { countViolations } from '../helpers/invariants.js';
import { ManualClock } from '../../src/shared/clock.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';
import type { DeviceReport } from '../../src/usage/report-schema.js';

/*
 * Device state must be decided inside the commit that applies a report. Each case holds a
 * report's signature check open on the production worker pool (the answer is kept back, the
 * check itself runs on the worker), lets an operator act or a second report arrive meanwhile,
 * then lets the check answer.
 */

let h: Harness;
let held: HeldVerifier;
let clock: ManualClock;

async function start(): Promise<void> {
  clock = new ManualClock(Date.now());
  h = await startHarness({ clock, verifier: 'pooled', wrapVerifier: (v) => (held = new HeldVerifier(v)) });
}

afterEach(async () => {
  held.release();
  await h.close();
  expect(poolFailures).toEqual([]); // the checks ran on the worker, not on the inline fallback
});

const nowSec = () => Math.floor(clock.now() / 1000);
const report = (id: string, count: number, end = nowSec()): DeviceReport => ({
  reportId: id, seq: 1, generatedAt: nowSec(), measurements: [{ tag: TAG, count, start: end - 3600, end }],
});
const usage = (va: string) =>
  h.services.db.prepare('SELECT coalesce(sum(in_use), 0) AS inUse, coalesce(sum(devices), 0) AS devices FROM va_usage WHERE va_id = ? AND tag = ?').get(va, TAG);
const status = (d: SimulatedDevice) => (h.services.db.prepare('SELECT status FROM devices WHERE id = ?').get(d.deviceId) as { status: string }).status;
const stored = (id: string) => h.count('SELECT count(*) FROM reports WHERE report_id = ?', id);

/** Marks the device stale the way the schedule does: silent past the stale age, then evaluated. */
async function makeStale(): Promise<void> {
  clock.advance((h.config.device.staleAfterDays + 1) * DAY);
  await h.api.post('/api/v1/alerts/evaluate').expect(200);
}

describe('when an operator acts while a report is being checked', () => {
  it('then a deregister that lands during the check wins: the report is refused and the device stays deregistered', async () => {
    await start();
    const d = await h.registered();
    expect((await d.sendReport(report('before', 3, nowSec() - 10))).status).toBe(200);
    clock.advance(61_000); // past the once-a-minute last-seen write: the report's commit writes the status
    held.hold();
    const inFlight = d.sendReport(report('during', 5));
    await held.entered(1);
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    held.release();
    const r = await inFlight;

    expect(status(d)).toBe('deregistered');
    expect(h.count('SELECT count(*) FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(0);
    expect(usage(h.defaultVa)).toEqual({ inUse: 0, devices: 0 });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unknown_device');
    expect(stored('during')).toBe(0);
    expect(countViolations(h.services.db)).toEqual([]);
  });

  it('then a move that lands during the check wins: the new count is in the new VA, none is left in the old', async () => {
    await start();
    const branch = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id as string;
    const d = await h.registered();
    expect((await d.sendReport(report('before', 3, nowSec() - 10))).status).toBe(200);
    held.hold();
    const inFlight = d.sendReport(report('during', 6));
    await held.entered(1);
    await h.api.post(`/api/v1/devices/${d.deviceId}/move`).send({ vaId: branch }).expect(200);
    held.release();
    expect((await inFlight).status).toBe(200);

    expect(usage(h.defaultVa)).toEqual({ inUse: 0, devices: 0 });
    expect(usage(branch)).toEqual({ inUse: 6, devices: 1 });
    expect(countViolations(h.services.db)).toEqual([]);
  });

  it('then a re-registration of a stale device that lands during the check restores it once', async () => {
    await start();
    const d = await h.registered();
    expect((await d.sendReport(report('before', 4, nowSec() - 10))).status).toBe(200);
    await makeStale();
    expect(status(d)).toBe('stale');
    const token = await h.token();
    held.hold(1); // the report's check only: the registration's own check runs through
    const inFlight = d.sendReport(report('during', 4));
    await held.entered(1);
    expect((await d.register(token)).status).toBe(200);
    held.release();
    expect((await inFlight).status).toBe(200);

    expect(usage(h.defaultVa)).toEqual({ inUse: 4, devices: 1 });
    expect(countViolations(h.services.db)).toEqual([]);
  });
});

describe('when a stale device speaks again', () => {
  it('then two reports in one group commit restore its usage once', async () => {
    await start();
    const d = await h.registered();
    expect((await d.sendReport(report('before', 4, nowSec() - 10))).status).toBe(200);
    await makeStale();
    expect(status(d)).toBe('stale');
    expect(usage(h.defaultVa)).toEqual({ inUse: 0, devices: 0 });
    held.hold();
    const both = [d.sendReport(report('again-1', 4, nowSec() - 5)), d.sendReport(report('again-2', 4))];
    await held.entered(2);
    held.release(); // both answers arrive in one turn: both reports join one group commit
    expect((await Promise.all(both)).map((r) => r.status)).toEqual([200, 200]);

    expect(status(d)).toBe('active');
    expect(usage(h.defaultVa)).toEqual({ inUse: 4, devices: 1 });
    expect(countViolations(h.services.db)).toEqual([]);
  });

  it('then two reports in consecutive group commits restore its usage once', async () => {
    await start();
    const d = await h.registered();
    expect((await d.sendReport(report('before', 4, nowSec() - 10))).status).toBe(200);
    await makeStale();
    held.hold();
    const first = d.sendReport(report('again-1', 4, nowSec() - 5));
    await held.entered(1);
    const second = d.sendReport(report('again-2', 4));
    await held.entered(2); // both were authenticated while the device was stale
    held.release(1);
    expect((await first).status).toBe(200); // committed: the device is active again
    held.release();
    expect((await second).status).toBe(200);

    expect(usage(h.defaultVa)).toEqual({ inUse: 4, devices: 1 });
    expect(countViolations(h.services.db)).toEqual([]);
  });

  it('then a report refused as a reused id (409) writes nothing: the device stays stale and uncounted', async () => {
    await start();
    const d = await h.registered();
    const first = report('same-id', 3, nowSec() - 10);
    expect((await d.sendReport(first)).status).toBe(200);
    await makeStale();
    expect(usage(h.defaultVa)).toEqual({ inUse: 0, devices: 0 });
    const reused = { ...first, measurements: [{ ...first.measurements[0]!, count: 7 }] };
    const r = await d.sendReport(reused);

    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('report_id_reused');
    expect(status(d)).toBe('stale');
    expect(usage(h.defaultVa)).toEqual({ inUse: 0, devices: 0 });
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(3);
    expect(countViolations(h.services.db)).toEqual([]);
  });
});
