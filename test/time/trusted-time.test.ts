import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices, createRequestHandler } from '../../src/main.js';
import { DAY_MS, ManualClock, type Clock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { ManualTime } from '../../src/time/monotonic.js';
import { close, listen } from '../../src/http/server.js';
import type { Services } from '../../src/services.js';
import { tempDir } from '../helpers/temp.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2027, 5, 1, 12);

const open: Services[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
  for (const s of open.splice(0)) if (s.db.open) s.db.close();
});

function build(dir: string, clock: Clock): Services {
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: dir, exchange: { bundleDir: `${dir}/bundles` } } }), {
    clock, logger: createLogger('error', true),
  });
  open.push(s);
  return s;
}

async function api(s: Services) {
  const server = http.createServer(createRequestHandler(s));
  await listen(server, 0, '127.0.0.1');
  servers.push(server);
  return supertest(server);
}

const openAlerts = (s: Services, kind: string) => s.alerts.list({ open: true, kind, limit: 10 }).items;
const events = (s: Services, type: string) => s.events.list({ type, limit: 10 }).items;
const tokenState = (s: Services, id: string) => s.tokens.list().find((t) => t.id === id)!.state;
const floorInStore = (s: Services) => Number((s.db.prepare("SELECT value FROM meta WHERE key = 'time_floor'").get() as { value: string }).value);

describe('when the system clock jumps forward while the collector runs', () => {
  it('then the jump is not believed for expiry, an alert is raised, and setting the clock right leaves no trace', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    const token = s.tokens.create({ vaId: 'Default', description: 'week', expiresInDays: 7 }, 'test');
    s.evaluateAlerts();

    clock.jump(365 * DAY_MS); // a wrong NTP server, a typo in the year
    clock.advance(HOUR);
    expect(s.time.now()).toBe(T0 + HOUR); // measured: an hour has passed, not a year
    expect(tokenState(s, token.id)).toBe('active');
    s.evaluateAlerts();
    s.evaluateAlerts();
    const alert = openAlerts(s, 'clock_forward');
    expect(alert).toHaveLength(1);
    expect(alert[0]!.severity).toBe('critical');
    expect(alert[0]!.message).toContain('outpost time confirm');
    expect(events(s, 'time.clock_forward')).toHaveLength(1);
    expect(floorInStore(s)).toBe(T0 + HOUR);

    clock.jump(-365 * DAY_MS); // someone sets it right
    clock.advance(HOUR);
    s.evaluateAlerts();
    expect(openAlerts(s, 'clock_forward')).toHaveLength(0);
    expect(s.time.now()).toBe(T0 + 2 * HOUR);
    expect(tokenState(s, token.id)).toBe('active');
  });

  it('then a jump within the tolerance is simply followed (NTP corrections)', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    clock.jump(60_000);
    expect(s.time.now()).toBe(T0 + 60_000);
    s.evaluateAlerts();
    expect(openAlerts(s, 'clock_forward')).toHaveLength(0);
  });

  it('then an operator who confirms the clock makes it believed again, with an event naming old and new floor', async () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    const token = s.tokens.create({ vaId: 'Default', description: 'week', expiresInDays: 7 }, 'test');
    clock.jump(10 * DAY_MS); // the host was suspended for ten days: the jump is real
    s.evaluateAlerts();
    expect(tokenState(s, token.id)).toBe('active');
    const a = await api(s);
    const before = (await a.get('/api/v1/time').expect(200)).body;
    expect(before).toMatchObject({ systemClock: 'ahead', aheadMs: 10 * DAY_MS, trustedTime: new Date(T0).toISOString(), zone: 'UTC' });
    expect(before.alerts.map((x: { kind: string }) => x.kind)).toEqual(['clock_forward']);

    const after = (await a.post('/api/v1/time/confirm').send({}).expect(200)).body;
    expect(after).toMatchObject({ systemClock: 'believed', trustedTime: new Date(T0 + 10 * DAY_MS).toISOString(), alerts: [] });
    expect(tokenState(s, token.id)).toBe('expired');
    const e = events(s, 'time.confirmed');
    expect(e).toHaveLength(1);
    expect(e[0]!.actor).toBe('operator');
    expect(e[0]!.details).toMatchObject({ oldFloor: new Date(T0).toISOString(), newFloor: new Date(T0 + 10 * DAY_MS).toISOString() });
  });
});

describe('when the system clock is set back while the collector runs', () => {
  it('then the trusted time keeps the monotonic pace, so a token still expires on time', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    const token = s.tokens.create({ vaId: 'Default', description: 'short', expiresInDays: 1 }, 'test');
    clock.jump(-2 * DAY_MS); // to keep the token alive
    clock.advance(DAY_MS + HOUR);
    expect(s.time.now()).toBe(T0 + DAY_MS + HOUR);
    expect(tokenState(s, token.id)).toBe('expired');
    s.evaluateAlerts();
    expect(openAlerts(s, 'clock_backwards')).toHaveLength(1);
    expect(floorInStore(s)).toBe(T0 + DAY_MS + HOUR);
  });

  it('then a step back within the tolerance waits for the clock instead of running ahead of it', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    s.time.now();
    clock.jump(-30_000);
    clock.advance(10_000);
    expect(s.time.now()).toBe(T0);
    clock.advance(30_000);
    expect(s.time.now()).toBe(T0 + 10_000); // the system clock again, no offset kept
    s.evaluateAlerts();
    expect(openAlerts(s, 'clock_backwards')).toHaveLength(0);
  });
});

describe('when a verified upstream time arrives', () => {
  it('then one far in the future is not believed: an alert and an event, and no token expires', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    const token = s.tokens.create({ vaId: 'Default', description: 'week', expiresInDays: 7 }, 'test');
    s.time.observeUpstreamTime(T0 + 20 * 365 * DAY_MS);
    expect(s.time.now()).toBe(T0);
    expect(tokenState(s, token.id)).toBe('active');
    expect(openAlerts(s, 'clock_forward').map((a) => a.subject)).toEqual(['upstream']);
    expect(events(s, 'time.upstream_ahead')).toHaveLength(1);
  });

  it('then one that agrees with a system clock that jumped vouches for it', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    clock.jump(3 * DAY_MS);
    s.evaluateAlerts();
    expect(openAlerts(s, 'clock_forward')).toHaveLength(1);
    s.time.observeUpstreamTime(T0 + 3 * DAY_MS - 60_000); // made a minute ago, by the upstream's clock
    expect(s.time.now()).toBe(T0 + 3 * DAY_MS);
    expect(openAlerts(s, 'clock_forward')).toHaveLength(0);
    expect(events(s, 'time.confirmed')[0]!.actor).toBe('upstream');
  });

  it('then one a little later than the trusted time raises the floor', () => {
    const clock = new ManualTime(T0);
    const s = build(tempDir('time'), clock);
    s.time.observeUpstreamTime(T0 - DAY_MS); // an old response: changes nothing
    expect(s.time.now()).toBe(T0);
    clock.jump(-DAY_MS); // the system clock is a day slow
    s.time.observeUpstreamTime(T0 + 60_000);
    expect(s.time.now()).toBe(T0 + 60_000);
  });
});

describe('across a restart (the downtime is unknown)', () => {
  it('then a clock at or above the stored floor, within the longest believable downtime, is believed', () => {
    const dir = tempDir('time');
    const clock = new ManualTime(T0);
    build(dir, clock).time.check();
    open.pop()!.db.close();
    clock.advance(12 * DAY_MS); // off for twelve days
    clock.restart();
    const s = build(dir, clock);
    s.evaluateAlerts();
    expect(s.time.now()).toBe(T0 + 12 * DAY_MS);
    expect(openAlerts(s, 'clock_forward')).toHaveLength(0);
  });

  it('then a clock absurdly far past the floor is not believed until an operator confirms it', () => {
    const dir = tempDir('time');
    const clock = new ManualTime(T0);
    const first = build(dir, clock);
    const token = first.tokens.create({ vaId: 'Default', description: 'week', expiresInDays: 7 }, 'test');
    first.time.check();
    first.db.close();
    clock.jump(400 * DAY_MS); // a dead RTC battery read as a date far ahead
    clock.restart();
    const s = build(dir, clock);
    s.evaluateAlerts();
    expect(s.time.now()).toBe(T0);
    expect(tokenState(s, token.id)).toBe('active');
    expect(openAlerts(s, 'clock_forward')).toHaveLength(1);
    s.time.confirm('test');
    expect(s.time.now()).toBe(T0 + 400 * DAY_MS);
    expect(tokenState(s, token.id)).toBe('expired');
  });

  it('then a forward jump still unconfirmed at the stop stays unconfirmed: a restart does not launder it', () => {
    const dir = tempDir('time');
    const clock = new ManualTime(T0);
    const first = build(dir, clock);
    clock.jump(5 * DAY_MS);
    first.evaluateAlerts();
    first.db.close();
    clock.advance(HOUR);
    clock.restart();
    const s = build(dir, clock);
    s.evaluateAlerts();
    expect(s.time.now()).toBe(T0);
    expect(openAlerts(s, 'clock_forward')).toHaveLength(1);
  });

  it('when the collector restarts with its clock set back, then it still knows the later time and alerts', () => {
    const dir = tempDir('time');
    const clock = new ManualClock(Date.UTC(2027, 5, 1));
    const first = build(dir, clock);
    const token = first.tokens.create({ vaId: 'Default', description: 'short', expiresInDays: 1 }, 'test');
    clock.advance(3 * DAY_MS);
    first.time.check();
    first.db.close();

    clock.advance(-5 * DAY_MS); // the host comes back with its clock two days before the token's creation
    const second = build(dir, clock);
    second.evaluateAlerts();
    expect(openAlerts(second, 'clock_backwards')).toHaveLength(1);
    expect(second.time.now()).toBe(Date.UTC(2027, 5, 4));
    expect(tokenState(second, token.id)).toBe('expired');
    expect(events(second, 'time.clock_backwards')).toHaveLength(1);
  });
});

describe('when the floor is already wrong', () => {
  it('then `time reset-floor` sets it back, logged with the old and new floor, and tokens live again', async () => {
    const dir = tempDir('time');
    const clock = new ManualTime(T0);
    const first = build(dir, clock);
    const token = first.tokens.create({ vaId: 'Default', description: 'week', expiresInDays: 7 }, 'test');
    // What an earlier version left behind after one response from the future.
    first.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('time_floor', ?)").run(String(Date.UTC(2099, 0, 1)));
    first.db.close();
    clock.restart();
    const s = build(dir, clock);
    s.evaluateAlerts();
    expect(tokenState(s, token.id)).toBe('expired');
    expect(openAlerts(s, 'clock_backwards')).toHaveLength(1);

    const a = await api(s);
    const bad = await a.post('/api/v1/time/reset-floor').send({ to: 'yesterday' }).expect(400);
    expect(bad.body.error.message).toContain('to');
    const ahead = await a.post('/api/v1/time/reset-floor').send({ to: new Date(T0 + DAY_MS).toISOString() }).expect(409);
    expect(ahead.body.error.code).toBe('floor_ahead_of_clock');
    expect(s.time.now()).toBe(Date.UTC(2099, 0, 1)); // a refused reset changes nothing
    const refused = await a.post('/api/v1/time/confirm').send({}).expect(409);
    expect(refused.body.error.code).toBe('clock_behind_floor');
    expect(refused.body.error.message).toContain('reset-floor');

    const r = (await a.post('/api/v1/time/reset-floor').send({ to: new Date(T0 - HOUR).toISOString() }).expect(200)).body;
    expect(r).toMatchObject({ systemClock: 'believed', trustedTime: new Date(T0).toISOString(), alerts: [] });
    expect(tokenState(s, token.id)).toBe('active');
    const e = events(s, 'time.floor_reset');
    expect(e).toHaveLength(1);
    expect(e[0]!.details).toMatchObject({ oldFloor: '2099-01-01T00:00:00.000Z', newFloor: new Date(T0 - HOUR).toISOString() });
    expect(floorInStore(s)).toBe(T0);
  });
});
