import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import type { EntitlementLineInput } from '../../src/licenses/service.js';

let h: Harness;
let campus: string;
beforeEach(async () => {
  h = await startHarness();
  campus = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body.id;
});
afterEach(() => h.close());

const line = (o: Partial<EntitlementLineInput>) =>
  h.services.licenses.addLine(
    { vaId: h.defaultVa, tag: TAG, displayName: 'DNA Network Stack', kind: 'subscription', quantity: 10, startsAt: Date.now() - DAY, endsAt: Date.now() + 365 * DAY, ...o },
    'test',
  );

async function use(count: number, vaId = h.defaultVa) {
  const d = await h.registered(undefined, vaId);
  await d.sendReport(d.report(TAG, count));
  return d;
}

const tagOf = async (vaId: string) =>
  ((await h.api.get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body.tags as { tag: string }[]).find((t) => t.tag === TAG) as
    | { owned: number; inUse: number; status: string }
    | undefined;
const lines = async (vaId: string) => (await h.api.get(`/api/v1/virtual-accounts/${vaId}/entitlements`).expect(200)).body.items as { kind: string; quantity: number; endsAt: string | null }[];
const total = () => h.count('SELECT coalesce(sum(quantity), 0) FROM entitlements WHERE tag = ?', TAG);
const transfer = (quantity: number, o: Record<string, unknown> = {}) =>
  h.api.post('/api/v1/licenses/transfers').send({ fromVaId: h.defaultVa, toVaId: campus, tag: TAG, quantity, ...o });

describe('a license transfer between virtual accounts, in the local ledger', () => {
  it('when more than the source has available is asked, then 409 names the available quantity, and nothing changes', async () => {
    line({ quantity: 10 });
    await use(7);
    const r = await transfer(4).expect(409);
    expect(r.body.error.code).toBe('not_enough_available');
    expect(r.body.error.message).toContain('3 of');
    expect(r.body.error.details).toMatchObject({ available: 3, owned: 10, inUse: 7 });
    expect(total()).toBe(10);
    expect(h.count('SELECT count(*) FROM license_transfers')).toBe(0);
    // Exactly what is available goes.
    await transfer(3).expect(201);
  });

  it('when lines of several kinds are held, then the one ending soonest is debited first and perpetual last; the destination gets lines of the same kind and validity', async () => {
    const soon = Date.now() + 30 * DAY;
    const later = Date.now() + 300 * DAY;
    line({ kind: 'perpetual', quantity: 5, endsAt: null });
    line({ kind: 'subscription', quantity: 4, endsAt: later });
    line({ kind: 'term', quantity: 2, endsAt: soon });
    const r = await transfer(7, { reason: 'Campus grows' }).expect(201);
    expect(r.body).toMatchObject({ state: 'provisional', quantity: 7, reason: 'Campus grows' });
    expect(r.body.lines.map((l: { kind: string; quantity: number }) => [l.kind, l.quantity])).toEqual([['term', 2], ['subscription', 4], ['perpetual', 1]]);
    const dest = (await lines(campus)).map((l) => [l.kind, l.quantity, l.endsAt]);
    expect(dest).toEqual(expect.arrayContaining([['term', 2, new Date(soon).toISOString()], ['subscription', 4, new Date(later).toISOString()], ['perpetual', 1, null]]));
    expect((await lines(h.defaultVa)).map((l) => [l.kind, l.quantity])).toEqual([['perpetual', 4]]);
    expect(h.count('SELECT count(*) FROM entitlements WHERE va_id = ? AND transfer_id = ?', campus, r.body.id)).toBe(3);
  });

  it("when licenses move, then both VAs' compliance follows at once and the account's totals stay the same", async () => {
    line({ quantity: 10 });
    await use(4);
    await use(5, campus); // Campus owns none: not authorized
    expect((await tagOf(campus))!.status).toBe('not_authorized');
    const before = total();
    await transfer(6).expect(201);
    expect(await tagOf(h.defaultVa)).toMatchObject({ owned: 4, inUse: 4, status: 'in_compliance' });
    expect(await tagOf(campus)).toMatchObject({ owned: 6, inUse: 5, status: 'in_compliance' });
    expect(total()).toBe(before);
    expect((await h.api.get('/api/v1/alerts?kind=shortage').expect(200)).body.items.filter((a: { subject: string }) => a.subject === `${campus}/${TAG}`)).toHaveLength(0);
    const events = (await h.api.get('/api/v1/events?type=license.*').expect(200)).body.items;
    expect(events.map((e: { type: string }) => e.type)).toContain('license.transfer_requested');
    const list = (await h.api.get('/api/v1/licenses/transfers').expect(200)).body.items;
    expect(list).toMatchObject([{ fromVaId: h.defaultVa, toVaId: campus, quantity: 6, state: 'provisional' }]);
  });

  it('when a user may operate on one of the two VAs only, then 403, and with both it goes through', async () => {
    line({ quantity: 10 });
    const token = async (name: string, roles: { role: 'va-admin' | 'va-viewer' | 'admin'; vaId?: string }[]) => {
      const u = await h.services.users.add({ name, password: 'correct horse battery staple', roles }, 'test');
      return h.services.users.createToken(u.id, { name: 't', expiresInDays: 1 }, 'test').secret;
    };
    await token('ann', [{ role: 'admin' }]);
    const one = await token('vera', [{ role: 'va-admin', vaId: h.defaultVa }]);
    const viewer = await token('vic', [{ role: 'va-admin', vaId: h.defaultVa }, { role: 'va-viewer', vaId: campus }]);
    const both = await token('bea', [{ role: 'va-admin', vaId: h.defaultVa }, { role: 'va-admin', vaId: campus }]);
    const as = (t: string) => transfer(2).set('authorization', `Bearer ${t}`);
    const refused = await as(one).expect(403);
    expect(refused.body.error.message).toContain('Campus');
    expect((await as(viewer).expect(403)).body.error.code).toBe('transfer_needs_both_virtual_accounts');
    expect(total()).toBe(10);
    expect(h.count('SELECT count(*) FROM license_transfers')).toBe(0);
    // A role taken away counts at once: read in the transaction that writes.
    const bea = h.services.users.get('bea');
    await as(both).expect(201);
    h.services.users.setRoles(bea.id, [{ role: 'va-admin', vaId: h.defaultVa }], 'test');
    await as(both).expect(403);
  });

  it('when the input is wrong, then 400 names the field and nothing changes', async () => {
    line({ quantity: 10 });
    expect((await transfer(0).expect(400)).body.error.message).toContain('quantity');
    expect((await transfer(1, { toVaId: h.defaultVa }).expect(400)).body.error.code).toBe('same_virtual_account');
    await transfer(1, { toVaId: 'no-such-va' }).expect(404);
    expect(h.count('SELECT count(*) FROM license_transfers')).toBe(0);
  });
});
