import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { LOCK_AFTER } from '../../src/users/service.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ config: { rate: { loginFailuresPerAccount: 3, loginFailuresPerAddress: 100, loginWindowMinutes: 15 } } });
  await h.services.users.add({ name: 'ann', password: 'a long enough passphrase', roles: [{ role: 'admin' }] }, 'test');
});
afterEach(() => h.close());

const signIn = (name: string, password: string) => h.api.post('/api/v1/auth/token').send({ name, password });

describe('signing in with a password', () => {
  it('when the password is right, then a short-lived token comes back once, and it opens the API', async () => {
    const r = await signIn('ann', 'a long enough passphrase').expect(201);
    expect(r.body.secret).toMatch(/^opt_tok_/);
    await h.api.get('/api/v1/virtual-accounts').set('authorization', `Bearer ${r.body.secret}`).expect(200);
    await h.api.get('/api/v1/virtual-accounts').expect(401);
  });

  it('when logins keep failing, then the account is slowed with 429 and Retry-After, even for the right password, and each failure is an event', async () => {
    for (let i = 0; i < 3; i++) expect((await signIn('ann', 'wrong password, long')).status).toBe(401);
    const slowed = await signIn('ann', 'a long enough passphrase');
    expect(slowed.status).toBe(429);
    expect(slowed.body.error.code).toBe('login_locked');
    expect(Number(slowed.headers['retry-after'])).toBeGreaterThan(0);
    expect(h.count("SELECT count(*) FROM events WHERE type = 'user.login_failed'")).toBe(3);
    // An unknown user is refused the same way, in words that do not say which part was wrong.
    const unknown = await signIn('nobody', 'whatever password');
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe('the user name or the password is wrong');
  });

  it(`when ${LOCK_AFTER} logins in a row fail, then the account is locked and says so until an admin enables it`, async () => {
    for (let i = 0; i < LOCK_AFTER; i++) await h.services.users.login('ann', 'wrong password, long').catch(() => undefined);
    await expect(h.services.users.login('ann', 'a long enough passphrase')).rejects.toMatchObject({ status: 423, code: 'account_locked' });
    expect(h.services.users.get('ann').locked).toBe(true);
    h.services.users.setStatus('ann', 'active', 'test');
    await expect(h.services.users.login('ann', 'a long enough passphrase')).resolves.toMatchObject({ actor: 'user:ann' });
  });

  it('when the last active admin would go, then the change is refused', async () => {
    expect(() => h.services.users.setStatus('ann', 'disabled', 'test')).toThrow(/no active admin/);
    expect(() => h.services.users.remove('ann', 'test')).not.toThrow(); // the last user may go: the collector is its host's again
    await h.api.get('/api/v1/virtual-accounts').expect(200);
  });
});
