import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { LOCK_AFTER } from '../../src/users/service.js';

let h: Harness;
let admin: string;
const PASS = 'a long enough passphrase';
beforeEach(async () => {
  // The shipped limits: the account's sign-in throttle runs out on the very failure that locks it.
  h = await startHarness({ config: { rate: { loginFailuresPerAccount: LOCK_AFTER, loginFailuresPerAddress: 100, loginWindowMinutes: 15 } } });
  await h.services.users.add({ name: 'ann', password: 'the admin passphrase', roles: [{ role: 'admin' }] }, 'test');
  admin = `Bearer ${h.services.users.createToken(h.services.users.get('ann').id, { name: 'test', expiresInDays: 1 }, 'test').secret}`;
  await h.services.users.add({ name: 'bob', password: PASS, roles: [{ role: 'auditor' }] }, 'test');
});
afterEach(() => h.close());

const signIn = (password: string) => h.api.post('/api/v1/auth/login').send({ name: 'bob', password });

async function lockBob(): Promise<void> {
  for (let i = 0; i < LOCK_AFTER; i++) expect((await signIn('wrong password, long')).status).toBe(401);
  expect(h.services.users.get('bob').locked).toBe(true);
}

describe('an admin unlocking an account locked by failed sign-ins', () => {
  it('when an admin enables it, then its user signs in at once, not after the sign-in throttle refills', async () => {
    await lockBob();
    const r = await h.api.patch(`/api/v1/users/bob`).set('authorization', admin).send({ status: 'active' });
    expect(r.status).toBe(200);
    expect(r.body.locked).toBe(false);
    const again = await signIn(PASS);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });

  it('when an admin sets its password, then its user signs in with it at once', async () => {
    await lockBob();
    await h.api.post(`/api/v1/users/bob/password`).set('authorization', admin).send({ password: 'a brand new passphrase' }).expect(200);
    const again = await signIn('a brand new passphrase');
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });
});
