import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import { rumElement, smartLicense } from '../helpers/rum.js';

/**
 * An import says what it did: a file whose reports ended longer ago than device.staleAfterDays
 * makes its devices stale at once (their usage is not counted), and devices already in another
 * VA stay there; the counters stay exact throughout.
 */
let h: Harness;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 5, 1));
  h = await startHarness({ clock, config: { device: { staleAfterDays: 90 } } });
});
afterEach(() => h.close());

const sec = (ms: number) => Math.floor(ms / 1000);
const upload = (xml: string, vaId = h.defaultVa) =>
  h.api.post(`/api/v1/usage/rum?vaId=${vaId}`).set('content-type', 'application/xml').send(xml);
const inUse = () => h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE tag = ?', TAG);
const el = (serial: string, endMs: number, count: number, reportId = 1, measurements = 1) =>
  rumElement({
    pid: 'C9300-48P', serial, reportId, tag: TAG,
    measurements: Array.from({ length: measurements }, (_, i) => ({ start: sec(endMs) - 3600 * (measurements - i), end: sec(endMs) - 3600 * (measurements - i - 1), count })),
  });
const noDrift = async () => expect((await h.api.post('/api/v1/compliance/verify').expect(200)).body.drift).toEqual([]);

describe('when a file ends longer ago than the stale age', () => {
  it('then its devices are stale at once, counted and listed as such, and their usage is not in the VA', async () => {
    const old = clock.now() - 200 * DAY;
    const recent = clock.now() - DAY;
    const r = await upload(smartLicense(el('FOCOLD1', old, 2), el('FOCOLD2', old, 3), el('FOCNEW1', recent, 5)));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ accepted: 3, devicesCreated: 3, stale: 2, staleAfterDays: 90, otherVa: 0 });
    expect(r.body.staleDevices.map((d: { udi: string }) => d.udi).sort()).toEqual(['C9300-48P:FOCOLD1', 'C9300-48P:FOCOLD2']);
    expect(r.body.staleDevices[0].lastReportAt).toBe(new Date(sec(old) * 1000).toISOString());
    expect(inUse()).toBe(5);
    expect(h.count("SELECT count(*) FROM devices WHERE status = 'stale'")).toBe(2);
    expect(h.count("SELECT count(*) FROM events WHERE type = 'device.stale'")).toBe(2);
    await noDrift();
    // The next evaluation finds nothing more to release.
    await h.api.post('/api/v1/alerts/evaluate').expect(200);
    expect(inUse()).toBe(5);
    await noDrift();
  });

  it('then an active device whose new report is still old is released exactly once, and a recent report brings it back', async () => {
    const first = clock.now() - DAY;
    // Counted at first: its report is recent.
    expect((await upload(el('FOCGROW', first, 4))).body).toMatchObject({ stale: 0 });
    expect(inUse()).toBe(4);
    clock.advance(100 * DAY);
    // The same report grown by one old measurement: the device is past the stale age now.
    const r = await upload(el('FOCGROW', first + 3600_000, 6, 1, 2));
    expect(r.body).toMatchObject({ replaced: 1, stale: 1 });
    expect(inUse()).toBe(0);
    await noDrift();
    const again = await upload(el('FOCGROW', first + 3600_000, 6, 1, 2));
    expect(again.body).toMatchObject({ duplicate: 1, stale: 0 }); // a duplicate changes nothing, not even staleness
    const back = await upload(el('FOCGROW', clock.now() - DAY, 7, 2));
    expect(back.body).toMatchObject({ accepted: 1, stale: 0 });
    expect(inUse()).toBe(7);
    expect(h.count("SELECT count(*) FROM devices WHERE status = 'active'")).toBe(1);
    await noDrift();
  });
});

describe('when --va names another VA than the one a device lives in', () => {
  it('then the device stays where it is, and the result lists it', async () => {
    const lab = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body;
    const recent = clock.now() - DAY;
    await upload(el('FOCHOME', recent, 2)).expect(200);
    const r = await upload(smartLicense(el('FOCHOME', recent, 3, 2), el('FOCLAB', recent, 1)), lab.id);
    expect(r.body).toMatchObject({ accepted: 2, devicesCreated: 1, otherVa: 1 });
    expect(r.body.otherVaDevices).toEqual([expect.objectContaining({ udi: 'C9300-48P:FOCHOME', vaId: h.defaultVa, vaName: 'Default' })]);
    const home = (await h.api.get('/api/v1/devices?pid=C9300-48P').expect(200)).body.items.find((d: { udi: { serial: string } }) => d.udi.serial === 'FOCHOME');
    expect(home.vaId).toBe(h.defaultVa);
    await noDrift();
  });
});
