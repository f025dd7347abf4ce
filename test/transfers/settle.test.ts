import { afterEach, describe, expect, it } from 'vitest';
import { TAG, type Harness } from '../helpers/harness.js';
import type { Site } from '../helpers/exchange.js';
import { FIXTURE_TAG, type FakeCssm, type FakeLicense } from '../helpers/fake-cssm.js';
import { cloudTransferSite, outpostTransferSite } from './sites.js';
import { readManifest } from '../../src/exchange/read.js';

let s: Site | undefined;
let h: Harness | undefined;
let cssm: FakeCssm | undefined;
afterEach(async () => {
  await s?.close();
  await h?.close();
  await cssm?.stop();
  s = h = cssm = bearer = undefined;
});

/** A site with the reference upstream; Default holds 10 upstream, Campus 1, both as the collector's snapshot. */
let buy: (quantity: number, va?: string) => unknown = () => undefined;
async function outpostSite() {
  const site = await outpostTransferSite();
  s = site.s;
  buy = site.buy;
  buy(10);
  buy(1, 'Campus');
  await s.importFile((await s.up.process((await s.exportNow()).file)).responseFile);
  return site.campus;
}
const api = () => (s ?? { h: h! }).h.api;
/** Once users exist, reads need a token too. */
let bearer: string | undefined;
const get = (path: string) => (bearer ? api().get(path).set('authorization', `Bearer ${bearer}`) : api().get(path));
const tagOf = async (vaId: string, tag = TAG) =>
  ((await get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body.tags as { tag: string; owned: number; inUse: number; status: string }[]).find((t) => t.tag === tag);
const transfer = async (from: string, to: string, quantity: number, tag = TAG) =>
  (await api().post('/api/v1/licenses/transfers').send({ fromVaId: from, toVaId: to, tag, quantity }).expect(201)).body as { id: string };
const settle = (id: string, body: Record<string, unknown>) => api().post(`/api/v1/licenses/transfers/${id}/settle`).send(body);
const stateOf = async (id: string) => ((await get('/api/v1/licenses/transfers').expect(200)).body.items as { id: string; state: string; settledBy: string | null }[]).find((t) => t.id === id)!;
const settledEvents = async () =>
  ((await get('/api/v1/events?type=license.transfer_settled').expect(200)).body.items as { type: string; subject: string; details: Record<string, unknown> }[]);
const payloadsOf = async (file: string) => (await readManifest(file)).manifest.payloads.map((p) => p.name);

describe('a provisional transfer settled by hand', () => {
  it('when settled as confirmed, then the ledger and both VAs stay as they are, and a later snapshot is not laid over', async () => {
    const campus = await outpostSite();
    const d = await s!.h.registered(undefined, campus);
    await d.sendReport(d.report(TAG, 3));
    const t = await transfer(s!.h.defaultVa, campus, 4);
    expect(await tagOf(s!.h.defaultVa)).toMatchObject({ owned: 6, status: 'in_compliance' });
    expect(await tagOf(campus)).toMatchObject({ owned: 5, inUse: 3, status: 'in_compliance' });

    const r = await settle(t.id, { as: 'confirmed', reason: 'seen in the portal on both VAs' }).expect(200);
    expect(r.body).toMatchObject({ state: 'confirmed', settledBy: 'manual', settleReason: 'seen in the portal on both VAs' });
    expect(r.body.warning).toBeUndefined();
    expect(await tagOf(s!.h.defaultVa)).toMatchObject({ owned: 6, status: 'in_compliance' });
    expect(await tagOf(campus)).toMatchObject({ owned: 5, inUse: 3, status: 'in_compliance' });
    expect(await settledEvents()).toMatchObject([{ subject: t.id, details: { as: 'confirmed', reason: 'seen in the portal on both VAs', by: expect.any(String) } }]);

    // Not sent again: the next bundle carries no transfer.
    const exp = await s!.exportNow();
    expect(await payloadsOf(exp.file)).not.toContain('transfers.ndjson.gz');
    // The upstream never applied it: its next snapshots are taken as they are, nothing laid over them.
    buy(1);
    buy(1, 'Campus');
    const imp = await s!.importFile((await s!.up.process(exp.file)).responseFile);
    expect(imp.body).toMatchObject({ status: 'applied', transfers: { confirmed: 0, refused: 0 } });
    expect(await tagOf(s!.h.defaultVa)).toMatchObject({ owned: 11 });
    expect(await tagOf(campus)).toMatchObject({ owned: 2, inUse: 3, status: 'shortage' });
    expect(s!.h.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);
    expect(await stateOf(t.id)).toMatchObject({ state: 'confirmed', settledBy: 'manual' });
  });

  it('when settled as reverted, then it is undone as a refusal is, both VAs follow, and the next bundle does not carry it', async () => {
    const campus = await outpostSite();
    const d = await s!.h.registered(undefined, s!.h.defaultVa);
    await d.sendReport(d.report(TAG, 6));
    const t = await transfer(s!.h.defaultVa, campus, 4);
    expect(await payloadsOf((await s!.exportNow()).file)).toContain('transfers.ndjson.gz'); // it travels while provisional
    expect(await tagOf(campus)).toMatchObject({ owned: 5 });

    const r = await settle(t.id, { as: 'reverted', reason: 'moved by mistake, undo it' }).expect(200);
    expect(r.body).toMatchObject({ state: 'refused', settledBy: 'manual', settleReason: 'moved by mistake, undo it' });
    expect(r.body.warning).toBeUndefined(); // never went to Cisco
    expect(await tagOf(s!.h.defaultVa)).toMatchObject({ owned: 10, inUse: 6, status: 'in_compliance' });
    expect(await tagOf(campus)).toMatchObject({ owned: 1 });
    expect(s!.h.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);
    expect(s!.h.count('SELECT coalesce(sum(quantity), 0) FROM entitlements WHERE tag = ?', TAG)).toBe(11);
    const types = ((await s!.h.api.get('/api/v1/events?type=license.*').expect(200)).body.items as { type: string }[]).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['license.transfer_settled', 'license.transfer_reverted']));

    const exp = await s!.exportNow();
    expect(await payloadsOf(exp.file)).not.toContain('transfers.ndjson.gz');
    await s!.importFile((await s!.up.process(exp.file)).responseFile);
    const upstream = s!.up.service.db.prepare('SELECT count(*) FROM license_transfers').pluck().get();
    expect(upstream).toBe(0);
  });

  it('when the user may operate on one VA only, or the transfer is not provisional, or unknown, or the input is wrong, then 403, 409, 404, 400, and nothing changes', async () => {
    const campus = await outpostSite();
    const t = await transfer(s!.h.defaultVa, campus, 2);
    const token = async (name: string, roles: { role: 'va-admin' | 'admin'; vaId?: string }[]) => {
      const u = await s!.h.services.users.add({ name, password: 'correct horse battery staple', roles }, 'test');
      return s!.h.services.users.createToken(u.id, { name: 't', expiresInDays: 1 }, 'test').secret;
    };
    const admin = await token('ann', [{ role: 'admin' }]);
    bearer = admin;
    const one = await token('vera', [{ role: 'va-admin', vaId: s!.h.defaultVa }]);
    const ok = { as: 'reverted', reason: 'moved by mistake, undo it' };
    const denied = await settle(t.id, ok).set('authorization', `Bearer ${one}`).expect(403);
    expect(denied.body.error.code).toBe('transfer_needs_both_virtual_accounts');
    expect(denied.body.error.message).toContain('Campus');

    const as = (body: Record<string, unknown>, id = t.id) => settle(id, body).set('authorization', `Bearer ${admin}`);
    expect((await as({ as: 'undone', reason: 'moved by mistake' }).expect(400)).body.error.details.issues[0].path).toBe('as');
    expect((await as({ as: 'reverted', reason: 'short' }).expect(400)).body.error.details.issues[0].path).toBe('reason');
    expect((await as({ as: 'reverted' }).expect(400)).body.error.details.issues[0].path).toBe('reason');
    expect((await as({ as: 'reverted', reason: 'x'.repeat(501) }).expect(400)).body.error.details.issues[0].path).toBe('reason');
    await as(ok, 'trf_nope').expect(404);
    expect(await stateOf(t.id)).toMatchObject({ state: 'provisional', settledBy: null });
    expect(await tagOf(campus)).toMatchObject({ owned: 3 });
    expect(await settledEvents()).toHaveLength(0);

    await as({ as: 'confirmed', reason: 'seen in the portal' }).expect(200);
    const again = await as(ok).expect(409);
    expect(again.body.error.code).toBe('transfer_not_provisional');
    expect(again.body.error.message).toContain('confirmed');
    expect(await tagOf(campus)).toMatchObject({ owned: 3 });
    expect(await settledEvents()).toHaveLength(1);
  });
});

describe("a transfer through Cisco's cloud settled by hand", () => {
  const dna = (va: string, quantity: number): FakeLicense => ({ va, name: 'DNA Network Stack', tag: FIXTURE_TAG, quantity, inUse: 0, licenseType: 'TERM' });

  it('when one Cisco accepted but never shows is reverted, then the answer and the event say Cisco may still apply it, and it is not sent again', async () => {
    const site = await cloudTransferSite([dna('DEFAULT', 300), dna('Campus', 20)], 'manual');
    h = site.h;
    cssm = site.cssm;
    const campus = site.campus;
    const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result as { status: string };
    expect((await sync()).status).toBe('synced');
    const t = await transfer(h.defaultVa, campus, 30, FIXTURE_TAG);
    expect((await sync()).status).toBe('synced');
    expect(cssm.transfers()).toHaveLength(1);
    expect(await stateOf(t.id)).toMatchObject({ state: 'provisional' });

    const r = await settle(t.id, { as: 'reverted', reason: 'Cisco never showed it after a week' }).expect(200);
    expect(r.body.warning).toContain('Cisco may still apply it');
    const [e] = await settledEvents();
    expect(e!.details).toMatchObject({ as: 'reverted', warning: expect.stringContaining('Cisco may still apply it') });
    expect([(await tagOf(h.defaultVa, FIXTURE_TAG))!.owned, (await tagOf(campus, FIXTURE_TAG))!.owned]).toEqual([300, 20]);

    expect((await sync()).status).toBe('synced');
    expect(cssm.transfers()).toHaveLength(1);
    expect([(await tagOf(h.defaultVa, FIXTURE_TAG))!.owned, (await tagOf(campus, FIXTURE_TAG))!.owned]).toEqual([300, 20]);
  });
});
