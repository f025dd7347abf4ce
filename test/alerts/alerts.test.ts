import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';

let h: Harness;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock(Date.now());
  h = await startHarness({ clock });
});
afterEach(() => h.close());

const open = async (kind: string) => (await h.api.get(`/api/v1/alerts?kind=${kind}`)).body.items;
const inUse = () => h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE tag = ?', TAG);
const evaluate = () => h.api.post('/api/v1/alerts/evaluate').expect(200);

describe('devices that go quiet', () => {
  it('when a device is silent past the reporting interval, then a silent alert; when it reports, then it clears', async () => {
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 2));
    clock.advance(31 * DAY);
    await evaluate();
    expect(await open('device_silent')).toHaveLength(1);
    expect(inUse()).toBe(2); // silent is not stale: it still counts
    await d.sendReport(d.report(TAG, 2));
    await evaluate();
    expect(await open('device_silent')).toHaveLength(0);
  });

  it('when a device is silent past the stale age, then it is stale, releases its licenses and raises an alert', async () => {
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 4));
    clock.advance(91 * DAY);
    await evaluate();
    const dev = (await h.api.get(`/api/v1/devices/${d.deviceId}`)).body;
    expect(dev.status).toBe('stale');
    expect(inUse()).toBe(0);
    const alerts = await open('device_stale');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ subject: h.defaultVa, details: { devices: 1 } }); // one alert per VA, counting its devices

    // It comes back: active again, counted again, alert cleared.
    expect((await d.sendReport(d.report(TAG, 3))).status).toBe(200);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}`)).body.status).toBe('active');
    expect(inUse()).toBe(3);
    await evaluate();
    expect(await open('device_stale')).toHaveLength(0);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
  });
});

describe('things that expire', () => {
  it('when a token expires within 30 days, then an info alert names it', async () => {
    await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'soon', expiresInDays: 10 }).expect(201);
    await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'later', expiresInDays: 90 }).expect(201);
    await evaluate();
    const alerts = await open('token_expiring');
    expect(alerts).toHaveLength(1);
    expect(alerts[0].message).toContain('soon');
  });

  it('when an entitlement line ends within 30 days, then a warning; once it has ended, the alert clears', async () => {
    h.services.licenses.addLine(
      { vaId: h.defaultVa, tag: TAG, displayName: 'DNA', kind: 'term', quantity: 5, startsAt: clock.now() - DAY, endsAt: clock.now() + 20 * DAY },
      'test',
    );
    await evaluate();
    expect(await open('entitlement_expiring')).toHaveLength(1);
    clock.advance(21 * DAY);
    await evaluate();
    expect(await open('entitlement_expiring')).toHaveLength(0);
  });
});

describe('when the system clock goes backwards', () => {
  it('then a critical alert is raised, and expired tokens stay expired', async () => {
    const token = await h.token({ expiresInDays: 1 });
    clock.advance(2 * DAY);
    await evaluate(); // the collector sees the later time and remembers it
    clock.advance(-2 * DAY); // someone sets the clock back to revive the token
    await evaluate();
    const alerts = await open('clock_backwards');
    expect(alerts).toHaveLength(1);
    expect(alerts[0].severity).toBe('critical');
    const r = await h.device().register(token);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('token_expired');
    const ident = (await h.api.get('/api/v1/identity')).body;
    expect(Date.parse(ident.time.trustedTime) - Date.parse(ident.time.systemTime)).toBeGreaterThanOrEqual(2 * DAY - 1000);
  });

  it('then once the clock has caught up, the alert clears', async () => {
    clock.advance(DAY);
    await evaluate();
    clock.advance(-DAY);
    await evaluate();
    expect(await open('clock_backwards')).toHaveLength(1);
    clock.advance(DAY + 1000);
    await evaluate();
    expect(await open('clock_backwards')).toHaveLength(0);
  });
});
