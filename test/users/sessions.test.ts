import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';

let h: Harness;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock(Date.now());
  h = await startHarness({ clock, config: { sessions: { idleMinutes: 30, absoluteHours: 12 } } });
  await h.services.users.add({ name: 'ann', password: 'a long enough passphrase', roles: [{ role: 'admin' }] }, 'test');
});
afterEach(() => h.close());

/** A browser, as far as the collector can tell: fetch over real TCP, the cookie sent back by hand. */
async function signIn(): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await fetch(`${h.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ann', password: 'a long enough passphrase' }) });
  expect(r.status).toBe(200);
  const setCookie = r.headers.get('set-cookie')!;
  const body = (await r.json()) as { csrfToken: string };
  return { cookie: setCookie.split(';')[0]!, csrf: body.csrfToken, setCookie };
}

const get = (path: string, cookie: string) => fetch(`${h.url}${path}`, { headers: { cookie } });
const post = (path: string, cookie: string, body: unknown, extra: Record<string, string> = {}) =>
  fetch(`${h.url}${path}`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...extra }, body: JSON.stringify(body) });

describe('browser sessions', () => {
  it('when a user signs in, then the cookie is HttpOnly and SameSite=Strict (not Secure on plain-HTTP loopback), and reads work with it', async () => {
    const s = await signIn();
    expect(s.setCookie).toMatch(/^outpost_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    expect((await get('/api/v1/devices', s.cookie)).status).toBe(200);
    const session = (await (await get('/api/v1/auth/session', s.cookie)).json()) as { csrfToken: string; actor: string };
    expect(session).toMatchObject({ csrfToken: s.csrf, actor: expect.stringMatching(/^user:ann \(session ses_/) });
    expect(h.count('SELECT count(*) FROM sessions WHERE secret_hash = ?', s.cookie.split('=')[1])).toBe(0); // only a hash is kept
  });

  it('when a change is sent with the cookie alone, then it is refused for want of the CSRF token; with it, it goes through', async () => {
    const s = await signIn();
    const without = await post('/api/v1/virtual-accounts', s.cookie, { name: 'Lab' });
    expect(without.status).toBe(403);
    expect(((await without.json()) as { error: { code: string } }).error.code).toBe('csrf_token_missing');
    expect((await post('/api/v1/virtual-accounts', s.cookie, { name: 'Lab' }, { 'x-csrf-token': 'not-the-token-at-all-000000000000' })).status).toBe(403);
    expect((await post('/api/v1/virtual-accounts', s.cookie, { name: 'Lab' }, { 'x-csrf-token': s.csrf })).status).toBe(201);
    // The origin rule still holds on top: another site's page is refused even with the token.
    expect((await post('/api/v1/virtual-accounts', s.cookie, { name: 'Lab2' }, { 'x-csrf-token': s.csrf, origin: 'https://evil.example' })).status).toBe(403);
    expect(h.count("SELECT count(*) FROM virtual_accounts WHERE name LIKE 'Lab%'")).toBe(1);
  });

  it('when the session is idle too long, or past its absolute end, or signed out, then it no longer works and says why', async () => {
    let s = await signIn();
    clock.advance(29 * 60_000);
    expect((await get('/api/v1/devices', s.cookie)).status).toBe(200);
    clock.advance(29 * 60_000); // the last request moved the idle deadline
    expect((await get('/api/v1/devices', s.cookie)).status).toBe(200);
    clock.advance(31 * 60_000);
    const idle = await get('/api/v1/devices', s.cookie);
    expect([idle.status, ((await idle.json()) as { error: { code: string } }).error.code]).toEqual([401, 'session_idle']);

    s = await signIn();
    for (let i = 0; i < 25; i++) {
      clock.advance(29 * 60_000);
      const r = await get('/api/v1/devices', s.cookie);
      if (r.status !== 200) {
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('session_expired');
        break;
      }
      expect(i).toBeLessThan(25);
    }

    s = await signIn();
    const out = await post('/api/v1/auth/logout', s.cookie, {}, { 'x-csrf-token': s.csrf });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/^outpost_session=; .*Max-Age=0/);
    const ended = await get('/api/v1/devices', s.cookie);
    expect([ended.status, ((await ended.json()) as { error: { code: string } }).error.code]).toEqual([401, 'session_ended']);
    // Signing in again still works with the ended cookie in the jar.
    expect((await fetch(`${h.url}/api/v1/auth/login`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ann', password: 'a long enough passphrase' }) })).status).toBe(200);
  });

  it('when the user is disabled, then its session stops at once', async () => {
    const s = await signIn();
    await h.services.users.add({ name: 'bob', password: 'another long passphrase', roles: [{ role: 'admin' }] }, 'test');
    h.services.users.setStatus('ann', 'disabled', 'test');
    expect((await get('/api/v1/devices', s.cookie)).status).toBe(401);
  });
});
