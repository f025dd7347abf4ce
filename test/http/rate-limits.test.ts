import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import { LoginThrottle, RateLimiter } from '../../src/http/rate-limit.js';
import { loadConfig } from '../../src/config/load.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function site(rate: Record<string, number>): Promise<{ h: Harness; clock: ManualClock }> {
  const clock = new ManualClock(Date.now());
  h = await startHarness({ clock, config: { rate } });
  return { h, clock };
}

const stored = (x: Harness) => x.count('SELECT COUNT(*) FROM reports');

describe('the device API: per device', () => {
  it('when a device goes over rate.devicePerMinute, then 429 with Retry-After, nothing stored, counted as a refusal; other devices go on', async () => {
    const { h } = await site({ devicePerMinute: 3 });
    const a = await h.registered();
    const b = await h.registered();
    for (let i = 0; i < 3; i++) expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200);
    const before = stored(h);

    const r = await a.sendReport(a.report(TAG, 1));
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('rate_limited');
    expect(r.body.error.message).toContain('rate.devicePerMinute');
    // Three a minute: one token back every 20 s.
    expect(r.headers['retry-after']).toBe('20');
    expect(stored(h)).toBe(before);
    expect(h.services.refusals.totals().rate_limited_device).toBe(1);

    expect((await b.sendReport(b.report(TAG, 1))).status).toBe(200);
  });

  it('when the Retry-After has passed, then the device is admitted again', async () => {
    const { h, clock } = await site({ devicePerMinute: 3 });
    const a = await h.registered();
    for (let i = 0; i < 3; i++) await a.sendReport(a.report(TAG, 1));
    const refused = await a.sendReport(a.report(TAG, 1));
    expect(refused.status).toBe(429);

    clock.advance(Number(refused.headers['retry-after']) * 1000);
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200);
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(429);
  });

  it('when requests naming a device are not signed by it, then they spend nothing of its allowance', async () => {
    const { h } = await site({ devicePerMinute: 2 });
    const a = await h.registered();
    const impostor = h.device('IMPOSTOR');
    for (let i = 0; i < 5; i++) {
      expect((await impostor.send('POST', '/device/v1/report', JSON.stringify(a.report(TAG, 1)), a.deviceId)).status).toBe(401);
    }
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200);
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200);
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(429);
  });
});

describe('the device API: per address', () => {
  it('when one address goes over rate.addressPerMinute, then 429 with Retry-After before the body is read, whatever the device, and again after the wait', async () => {
    const { h, clock } = await site({ addressPerMinute: 6 });
    const a = await h.registered(); // 1 request from this address
    const b = await h.registered(); // 2
    for (let i = 0; i < 2; i++) expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200); // 4
    for (let i = 0; i < 2; i++) expect((await b.sendReport(b.report(TAG, 1))).status).toBe(200); // 6

    const r = await b.sendReport(b.report(TAG, 1));
    expect(r.status).toBe(429);
    expect(r.body.error.message).toContain('rate.addressPerMinute');
    expect(r.headers['retry-after']).toBe('10');
    expect(r.headers.connection).toBe('close');
    expect((await a.send('GET', '/device/v1/collector', '')).status).toBe(429);
    expect(h.services.refusals.totals().rate_limited_address).toBe(2);

    clock.advance(10_000);
    expect((await a.sendReport(a.report(TAG, 1))).status).toBe(200);
  });

  it('the defaults admit 64 devices behind one address, each at its own limit', () => {
    const { rate } = loadConfig({ env: {}, overrides: { dataDir: '/nonexistent' } });
    expect(rate.addressPerMinute).toBeGreaterThanOrEqual(64 * rate.devicePerMinute);
  });
});

describe('RateLimiter', () => {
  it('drops the buckets of keys that have filled up again, and keeps the others', () => {
    let now = 0;
    const limiter = new RateLimiter(60, () => now); // one a second, a minute's burst
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`);
    now = 30_000;
    for (let i = 0; i < 60; i++) limiter.take('busy');
    expect(limiter.size).toBe(101);
    now = 60_000; // the first hundred are full again; 'busy' has half its bucket back
    limiter.take('new');
    expect(limiter.size).toBe(2);
  });

  it('refills nothing while the clock stands behind the last request', () => {
    let now = 10_000;
    const limiter = new RateLimiter(60, () => now, 1);
    expect(limiter.take('k')).toBe(0);
    now = 0;
    expect(limiter.take('k')).toBe(1);
    now = 11_000;
    expect(limiter.take('k')).toBe(0);
  });
});

describe('LoginThrottle', () => {
  const rate = { loginFailuresPerAccount: 3, loginFailuresPerAddress: 5, loginWindowMinutes: 15 };

  it('locks an account after its failures, names the wait, and lets it try again once a failure has come back', () => {
    let now = 0;
    const t = new LoginThrottle(rate, () => now);
    for (let i = 0; i < 3; i++) {
      expect(t.check('alice', '192.0.2.1')).toBeNull();
      t.failed('alice', '192.0.2.1');
    }
    const locked = t.check('alice', '192.0.2.9');
    expect(locked?.status).toBe(429);
    expect(locked?.code).toBe('login_locked');
    // Three in fifteen minutes: one back every five.
    expect(locked?.details.retryAfterSeconds).toBe(300);
    expect(t.check('bob', '192.0.2.1')).toBeNull();

    now = 300_000;
    expect(t.check('alice', '192.0.2.1')).toBeNull();
  });

  it('limits one address trying many accounts, apart from the accounts', () => {
    const t = new LoginThrottle(rate, () => 0);
    for (let i = 0; i < 5; i++) t.failed(`user${i}`, '192.0.2.7');
    const r = t.check('someone-else', '192.0.2.7');
    expect(r?.code).toBe('rate_limited');
    expect(r?.details.retryAfterSeconds).toBe(180);
    expect(t.check('someone-else', '192.0.2.8')).toBeNull();
  });

  it("a success clears the account's failures but not the address's", () => {
    const t = new LoginThrottle(rate, () => 0);
    t.failed('alice', '192.0.2.1');
    t.failed('alice', '192.0.2.1');
    t.succeeded('alice');
    t.failed('alice', '192.0.2.1');
    t.failed('alice', '192.0.2.1');
    expect(t.check('alice', '192.0.2.2')).toBeNull();
    t.failed('alice', '192.0.2.1');
    expect(t.check('carol', '192.0.2.1')?.code).toBe('rate_limited');
  });
});
