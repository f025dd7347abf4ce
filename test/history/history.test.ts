import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, TAG2, DAY, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import { daysBefore, expectedFit, seed } from './series.js';

let h: Harness;
afterEach(() => h?.close());

const START = Date.UTC(2026, 2, 10, 9); // 2026-03-10 09:00 UTC

async function history(vaId: string, tag?: string, since?: string) {
  const q = new URLSearchParams({ vaId, ...(tag ? { tag } : {}), ...(since ? { since } : {}) });
  return (await h.api.get(`/api/v1/usage/history?${q}`).expect(200)).body;
}

describe('usage history', () => {
  it("when devices report over several days, then each day keeps its highest in-use and what was owned, in the site's time zone", async () => {
    const clock = new ManualClock(START);
    // Tokyo is 9 hours ahead: 20:00 UTC on the 10th is already the 11th there.
    h = await startHarness({ clock, config: { time: { zone: 'Asia/Tokyo' } } });
    h.services.licenses.addLine({ vaId: h.defaultVa, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 50, startsAt: START - DAY, endsAt: null }, 'test');
    const d = await h.registered();
    const report = async (n: number) => {
      clock.advance(60_000);
      expect((await d.sendReport(d.report(TAG, n))).status).toBe(200);
      h.services.history.sample();
    };
    await report(3);
    await report(7);
    await report(2); // the day's peak stays 7
    clock.set(Date.UTC(2026, 2, 10, 20)); // the 11th in Tokyo
    await report(4);
    clock.advance(DAY);
    await report(6);
    const r = await history(h.defaultVa, TAG);
    expect(r.items).toEqual([
      { day: '2026-03-10', tag: TAG, inUse: 7, owned: 50 },
      { day: '2026-03-11', tag: TAG, inUse: 4, owned: 50 },
      { day: '2026-03-12', tag: TAG, inUse: 6, owned: 50 },
    ]);
    expect((await history(h.defaultVa, TAG, '2026-03-11')).items.map((i: { day: string }) => i.day)).toEqual(['2026-03-11', '2026-03-12']);
    // By name as well as by id.
    expect((await history('Default', TAG)).items).toHaveLength(3);
  });

  it('when a device is deregistered, then the days it counted in stay as they were', async () => {
    const clock = new ManualClock(START);
    h = await startHarness({ clock });
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 5));
    h.services.history.sample();
    clock.advance(DAY);
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).send({}).expect(200);
    h.services.history.sample();
    expect((await history(h.defaultVa, TAG)).items.map((i: { inUse: number }) => i.inUse)).toEqual([5, 0]);
  });

  it('when the query is wrong, then it is refused naming what is wrong, and nothing is a 500', async () => {
    h = await startHarness();
    const bad = await h.api.get(`/api/v1/usage/history?vaId=${h.defaultVa}&since=2026-02-30`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('since');
    expect((await h.api.get('/api/v1/usage/history')).status).toBe(400);
    expect((await h.api.get('/api/v1/usage/history?vaId=nope')).status).toBe(404);
    const range = await h.api.get(`/api/v1/usage/history?vaId=${h.defaultVa}&since=2026-03-02&until=2026-03-01`);
    expect(range.status).toBe(400);
    expect(range.body.error.code).toBe('invalid_range');
  });
});

describe('shortage forecast', () => {
  const now = START;
  const line = (quantity: number, tag = TAG) =>
    h.services.licenses.addLine({ vaId: h.defaultVa, tag, displayName: 'DNA', kind: 'perpetual', quantity, startsAt: now - 400 * DAY, endsAt: null }, 'test');
  // Rising by about half a licence a day, with a wobble so that the fit is not exact.
  const rising = Array.from({ length: 40 }, (_, i) => 10 + 0.5 * i + [0.3, -0.2, 0.4, -0.5, 0][i % 5]!).map(Math.round);

  it('when in-use rises toward what is owned, then the crossing date is where the least-squares line passes it, with the fit shown', async () => {
    h = await startHarness({ clock: new ManualClock(now) });
    line(40);
    const first = seed(h.services, h.defaultVa, TAG, rising, now);
    const f = (await h.api.get('/api/v1/usage/forecast').expect(200)).body.items[0];
    const e = expectedFit(rising);
    expect(f.fit.days).toBe(40);
    expect(f.fit.origin).toBe(first);
    expect(f.fit.slopePerDay).toBeCloseTo(e.slope, 9);
    expect(f.fit.intercept).toBeCloseTo(e.intercept, 9);
    expect(f.fit.r2).toBeCloseTo(e.r2, 9);
    // The first whole day after the origin on which intercept + slope·x is above 40.
    const x = Math.floor((40 - e.intercept) / e.slope) + 1;
    expect((40 - e.intercept) / e.slope % 1).not.toBe(0); // the series keeps clear of the edge
    const crossing = new Date(Date.parse(`${first}T00:00:00Z`) + x * DAY).toISOString().slice(0, 10);
    expect(f.crossingDate).toBe(crossing);
    expect(f.daysAhead).toBe((Date.parse(`${crossing}T00:00:00Z`) - Date.parse(`${daysBefore(now, 0)}T00:00:00Z`)) / DAY);
    expect(f.noForecast).toBeNull();
  });

  it('when the window holds more than 90 days, then only the last 90 complete days are fitted', async () => {
    h = await startHarness({ clock: new ManualClock(now) });
    line(1000);
    // 120 days: a flat 500 first, then the rise; the flat part is outside the window.
    const ys = [...Array.from({ length: 30 }, () => 500), ...Array.from({ length: 90 }, (_, i) => 100 + 2 * i + (i % 3))];
    seed(h.services, h.defaultVa, TAG, ys, now);
    h.services.history.sample(); // today's value is left out of the fit
    const f = (await h.api.get('/api/v1/usage/forecast').expect(200)).body.items[0];
    expect(f.fit.days).toBe(90);
    expect(f.fit.slopePerDay).toBeCloseTo(expectedFit(ys.slice(30)).slope, 9);
  });

  it('when there is no trend to extrapolate, then each says "no forecast" and why', async () => {
    h = await startHarness({ clock: new ManualClock(now) });
    const va = h.defaultVa;
    line(40, TAG);
    line(40, TAG2);
    seed(h.services, va, TAG, rising.slice(0, 10), now); // ten days
    seed(h.services, va, TAG2, Array.from({ length: 30 }, (_, i) => 30 - (i % 4)), now); // falling
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id;
    seed(h.services, other, TAG, rising, now); // owns nothing
    const items = (await h.api.get('/api/v1/usage/forecast').expect(200)).body.items as { vaId: string; tag: string; noForecast: { code: string; message: string } }[];
    const code = (v: string, t: string) => items.find((i) => i.vaId === v && i.tag === t)?.noForecast?.code;
    expect(code(va, TAG)).toBe('too_few_days');
    expect(items.find((i) => i.vaId === va && i.tag === TAG)!.noForecast.message).toContain('10 day(s)');
    expect(code(va, TAG2)).toBe('not_growing');
    expect(code(other, TAG)).toBe('not_owned');
  });

  it('when the crossing comes within forecast.alertDays, then shortage_forecast is raised, and cleared when more is owned', async () => {
    const clock = new ManualClock(now);
    h = await startHarness({ clock, config: { forecast: { alertDays: 30 } } });
    line(40);
    seed(h.services, h.defaultVa, TAG, rising, now);
    const open = async () => (await h.api.get('/api/v1/alerts?kind=shortage_forecast').expect(200)).body.items;
    const f = h.services.history.forecast()[0]!;
    expect(f.daysAhead).toBeGreaterThan(0);
    expect(f.daysAhead).toBeLessThanOrEqual(30);
    h.services.history.evaluateAlerts();
    const [a] = await open();
    expect(a.subject).toBe(`${h.defaultVa}/${TAG}`);
    expect(a.details).toMatchObject({ vaId: h.defaultVa, tag: TAG, crossingDate: f.crossingDate, owned: 40, days: 40 });
    expect(a.message).toContain(f.crossingDate);
    // 60 more owned puts the crossing well past 30 days.
    line(60);
    h.services.history.evaluateAlerts();
    expect(await open()).toEqual([]);
    expect(h.services.history.forecast()[0]!.daysAhead).toBeGreaterThan(30);
  });

  it('when alertDays is smaller than the days to the crossing, then nothing is raised', async () => {
    h = await startHarness({ clock: new ManualClock(now), config: { forecast: { alertDays: 1 } } });
    line(40);
    seed(h.services, h.defaultVa, TAG, rising, now);
    expect(h.services.history.forecast()[0]!.daysAhead).toBeGreaterThan(1);
    h.services.history.evaluateAlerts();
    expect(h.services.alerts.isOpen('shortage_forecast', `${h.defaultVa}/${TAG}`)).toBe(false);
  });
});
