import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import type { Role } from '../../src/users/roles.js';

/**
 * Access requests through the HTTP API, for each kind of caller: a user with no role, a
 * va-viewer of another VA, an admin, a va-admin of the VA and of another one.
 */
const PASSWORD = 'correct horse battery staple';
let h: Harness;
let vaA: string;
let vaB: string;
let vaC: string;
let deviceB: string;
const bearer: Record<string, string> = {};

async function user(name: string, roles: { role: Role; vaId?: string }[]): Promise<string> {
  const u = await h.services.users.add({ name, password: PASSWORD, roles }, 'test');
  return h.services.users.createToken(u.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
}

const as = (who: string) => ({
  get: (path: string) => h.api.get(`/api/v1${path}`).set('authorization', `Bearer ${bearer[who]}`),
  post: (path: string, body: object = {}) => h.api.post(`/api/v1${path}`).set('authorization', `Bearer ${bearer[who]}`).send(body),
});

/** A browser session: its cookie and CSRF token. */
async function session(name: string) {
  const r = await h.api.post('/api/v1/auth/login').send({ name, password: PASSWORD }).expect(200);
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  return { get: (path: string) => h.api.get(`/api/v1${path}`).set('cookie', cookie) };
}

const state = () => ({
  requests: h.services.db.prepare('SELECT * FROM access_requests ORDER BY id').all(),
  roles: h.services.db.prepare('SELECT * FROM user_roles ORDER BY user_id, role, va_id').all(),
  events: h.count('SELECT count(*) FROM events'),
});
const accessEvents = () =>
  (h.services.db.prepare("SELECT type, subject, va_id, details FROM events WHERE type LIKE 'access.%' ORDER BY id").all() as { type: string; subject: string; va_id: string; details: string }[]).map(
    (e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }),
  );
const justification = 'I run the switches of building B.';

beforeAll(async () => {
  h = await startHarness();
  vaA = h.defaultVa;
  vaB = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id;
  vaC = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body.id;
  deviceB = (await h.registered(undefined, vaB)).deviceId!;
  bearer.admin = await user('ann', [{ role: 'admin' }]);
  bearer.viewerA = await user('vic', [{ role: 'va-viewer', vaId: vaA }]);
  bearer.adminB = await user('bea', [{ role: 'va-admin', vaId: vaB }]);
  bearer.operator = await user('otto', [{ role: 'operator' }]);
  // A user whose roles were all taken away (the user routes give every user one at creation).
  bearer.none = await user('nora', [{ role: 'va-viewer', vaId: vaA }]);
  h.services.db.prepare("DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE name = 'nora')").run();
});
afterAll(() => h.close());

describe('access requests', () => {
  it('when a user with no role asks which VAs there are, then it gets their ids and names and nothing else', async () => {
    const r = await as('none').get('/access/virtual-accounts').expect(200);
    expect(r.body.items).toEqual([{ id: vaB, name: 'Branch' }, { id: vaC, name: 'Campus' }, { id: vaA, name: 'Default' }]);
    // The VAs it may still ask for: not those it administers already; an admin asks for none.
    expect((await as('adminB').get('/access/virtual-accounts').expect(200)).body.items.map((v: { id: string }) => v.id)).toEqual([vaC, vaA]);
    expect((await as('admin').get('/access/virtual-accounts').expect(200)).body.items).toEqual([]);
    // Nothing else of a VA is theirs to read.
    await as('none').get(`/virtual-accounts/${vaB}`).expect(403);
    await as('none').get(`/devices?vaId=${vaB}`).expect(403);
  });

  it('when the input is wrong, then a 400 names the field and nothing changes', async () => {
    const before = state();
    const cases: [object, string][] = [
      [{ vaId: vaB, role: 'va-viewer', justification: 'short' }, 'justification'],
      [{ vaId: vaB, role: 'va-viewer', justification: 'x'.repeat(1001) }, 'justification'],
      [{ vaId: vaB, role: 'admin', justification }, 'role'],
      [{ role: 'va-viewer', justification }, 'vaId'],
      [{ vaId: vaB, role: 'va-viewer', justification, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const r = await as('none').post('/access/requests', body);
      expect([r.status, r.body.error.message]).toEqual([400, expect.stringContaining(field)]);
    }
    const unknown = await as('none').post('/access/requests', { vaId: 'va_nope', role: 'va-viewer', justification });
    expect([unknown.status, unknown.body.error.message]).toEqual([404, expect.stringContaining('va_nope')]);
    expect(state()).toEqual(before);
  });

  let noraB: string;
  let vicB: string;
  let noraC: string;

  it('when a user with no role requests a VA, then it is pending, a second request for it is a 409, and so is one for a role already held', async () => {
    const before = state();
    const r = await as('none').post('/access/requests', { vaId: 'Branch', role: 'va-viewer', justification }).expect(201);
    expect(r.body).toMatchObject({ user: 'nora', vaId: vaB, va: 'Branch', role: 'va-viewer', state: 'pending', justification, decidedBy: null });
    noraB = r.body.id;
    const again = await as('none').post('/access/requests', { vaId: vaB, role: 'va-admin', justification });
    expect([again.status, again.body.error.code, again.body.error.details.requestId]).toEqual([409, 'request_pending', noraB]);
    // A va-viewer of A asks for B; for A itself it holds the role already.
    vicB = (await as('viewerA').post('/access/requests', { vaId: vaB, role: 'va-viewer', justification }).expect(201)).body.id;
    const held = await as('viewerA').post('/access/requests', { vaId: vaA, role: 'va-viewer', justification });
    expect([held.status, held.body.error.code]).toEqual([409, 'role_already_held']);
    expect(held.body.error.message).toContain('va-viewer on Default');
    // An operator's role on every VA covers va-admin on any.
    const operator = await as('operator').post('/access/requests', { vaId: vaB, role: 'va-admin', justification });
    expect([operator.status, operator.body.error.code]).toEqual([409, 'role_already_held']);
    noraC = (await as('none').post('/access/requests', { vaId: vaC, role: 'va-admin', justification: 'Campus needs a second admin.' }).expect(201)).body.id;
    expect(state().requests).toHaveLength((before.requests as unknown[]).length + 3);
  });

  it('when a va-admin of B looks at pending requests, then it sees B\'s alone; a user who administers nothing sees none', async () => {
    const r = await as('adminB').get('/access/requests?state=pending').expect(200);
    expect(r.body.items.map((x: { id: string }) => x.id)).toEqual([noraB, vicB]);
    expect((await as('admin').get('/access/requests?state=pending').expect(200)).body.items.map((x: { id: string }) => x.id)).toEqual([noraB, vicB, noraC]);
    expect((await as('viewerA').get('/access/requests').expect(200)).body.items).toEqual([]);
    const bad = await as('admin').get('/access/requests?state=open');
    expect([bad.status, bad.body.error.message]).toEqual([400, expect.stringContaining('state')]);
  });

  it('when a va-admin of B settles a request for C or grants a role beyond its own, then it is refused (403) and nothing changes', async () => {
    const before = state();
    const onC = await as('adminB').post(`/access/requests/${noraC}/approve`, { role: 'va-viewer' });
    expect([onC.status, onC.body.error.code]).toEqual([403, 'not_an_approver']);
    const denyC = await as('adminB').post(`/access/requests/${noraC}/deny`, { reason: 'not mine' });
    expect([denyC.status, denyC.body.error.code]).toEqual([403, 'not_an_approver']);
    for (const role of ['admin', 'operator']) {
      const r = await as('adminB').post(`/access/requests/${noraB}/approve`, { role });
      expect([r.status, r.body.error.code]).toEqual([403, 'role_beyond_yours']);
    }
    // A user with a role on some VA only, but not va-admin there, settles nothing.
    expect((await as('viewerA').post(`/access/requests/${noraB}/approve`, { role: 'va-viewer' })).status).toBe(403);
    expect(state()).toEqual(before);
  });

  it('when a va-admin of B approves a request for B, then the requester reads B at once, with its session and a new token', async () => {
    const nora = await session('nora');
    await nora.get(`/devices?vaId=${vaB}`).expect(403);
    const r = await as('adminB').post(`/access/requests/${noraB}/approve`, { role: 'va-viewer' }).expect(200);
    expect(r.body).toMatchObject({ state: 'approved', grantedRole: 'va-viewer', decidedBy: 'bea' });
    const seen = await nora.get(`/devices?vaId=${vaB}`).expect(200);
    expect(seen.body.items.map((d: { id: string }) => d.id)).toEqual([deviceB]);
    const token = h.services.users.createToken(h.services.users.get('nora').id, { name: 'after', expiresInDays: 1 }, 'test').secret;
    await h.api.get(`/api/v1/devices/${deviceB}`).set('authorization', `Bearer ${token}`).expect(200);
    // A viewer of B, not an operator of it.
    await h.api.post(`/api/v1/devices/${deviceB}/deregister`).set('authorization', `Bearer ${token}`).expect(403);
    const again = await as('admin').post(`/access/requests/${noraB}/approve`, { role: 'va-admin' });
    expect([again.status, again.body.error.code]).toEqual([409, 'not_pending']);
  });

  it('when an admin approves with another role than the one asked, then that role is granted and works at once', async () => {
    const vic = await session('vic');
    await vic.get(`/devices/${deviceB}`).expect(403);
    const r = await as('admin').post(`/access/requests/${vicB}/approve`, { role: 'va-admin' }).expect(200);
    expect(r.body).toMatchObject({ role: 'va-viewer', grantedRole: 'va-admin', decidedBy: 'ann' });
    await vic.get(`/devices/${deviceB}`).expect(200);
    expect(h.services.users.get('vic').roles).toEqual([{ role: 'va-admin', vaId: vaB }, { role: 'va-viewer', vaId: vaA }]);
  });

  it('when a request is denied, then the reason is required, and the requester sees the reason and who decided', async () => {
    const before = state();
    for (const body of [{}, { reason: '   ' }]) {
      const r = await as('admin').post(`/access/requests/${noraC}/deny`, body);
      expect([r.status, r.body.error.message]).toEqual([400, expect.stringContaining('reason')]);
    }
    expect(state()).toEqual(before);
    await as('admin').post(`/access/requests/${noraC}/deny`, { reason: 'Campus is run by the campus team: ask them.' }).expect(200);
    const mine = await as('none').get('/access/requests/mine').expect(200);
    expect(mine.body.items).toEqual([
      expect.objectContaining({ id: noraC, va: 'Campus', state: 'denied', reason: 'Campus is run by the campus team: ask them.', decidedBy: 'ann', grantedRole: null }),
      expect.objectContaining({ id: noraB, va: 'Branch', state: 'approved', grantedRole: 'va-viewer', decidedBy: 'bea', reason: null }),
    ]);
    // Denied, it may be asked again.
    await as('none').post('/access/requests', { vaId: vaC, role: 'va-viewer', justification: 'Only to read the Campus licenses.' }).expect(201);
  });

  it('when a requester withdraws, then only its own pending request goes, and it can no longer be settled', async () => {
    const id = (await as('viewerA').post('/access/requests', { vaId: vaC, role: 'va-viewer', justification }).expect(201)).body.id;
    await as('none').post(`/access/requests/${id}/withdraw`).expect(404);
    await as('adminB').post(`/access/requests/${id}/withdraw`).expect(404);
    const r = await as('viewerA').post(`/access/requests/${id}/withdraw`).expect(200);
    expect(r.body).toMatchObject({ state: 'withdrawn', decidedBy: 'vic' });
    expect((await as('viewerA').post(`/access/requests/${id}/withdraw`)).status).toBe(409);
    const late = await as('admin').post(`/access/requests/${id}/approve`, { role: 'va-viewer' });
    expect([late.status, late.body.error.code]).toEqual([409, 'not_pending']);
    expect(h.services.users.get('vic').roles.some((g) => g.vaId === vaC)).toBe(false);
  });

  it('when the requester was disabled meanwhile, then approving is refused and nothing is granted', async () => {
    const req = (await as('viewerA').post('/access/requests', { vaId: vaC, role: 'va-admin', justification }).expect(201)).body.id;
    h.services.users.setStatus('vic', 'disabled', 'test');
    const before = state();
    const r = await as('admin').post(`/access/requests/${req}/approve`, { role: 'va-admin' });
    expect([r.status, r.body.error.code]).toEqual([409, 'user_disabled']);
    expect(state()).toEqual(before);
    h.services.users.setStatus('vic', 'active', 'test');
    await as('admin').post(`/access/requests/${req}/deny`, { reason: 'asked while leaving' }).expect(200);
  });

  it('when the approver lost its role after it was authenticated, then its approval is refused: its rights are read as it settles', async () => {
    const req = (await as('none').post('/access/requests', { vaId: vaB, role: 'va-admin', justification }).expect(201)).body.id;
    const bea = h.services.users.get('bea');
    // The principal as authentication made it, before the role was taken away.
    const principal = { actor: 'user:bea', kind: 'user' as const, userId: bea.id, grants: bea.roles };
    h.services.users.setRoles('bea', [{ role: 'va-viewer', vaId: vaB }], 'test');
    const before = state();
    expect(() => h.services.access.approve(principal, req, 'va-admin', 'user:bea')).toThrow(expect.objectContaining({ status: 403, code: 'not_an_approver' }));
    expect(state()).toEqual(before);
    h.services.users.setRoles('bea', [{ role: 'va-admin', vaId: vaB }], 'test');
    await as('none').post(`/access/requests/${req}/withdraw`).expect(200);
  });

  it('then every step is an event: requested, approved with the role granted, denied with the reason, withdrawn', () => {
    const e = accessEvents();
    expect(e.map((x) => x.type)).toEqual([
      'access.requested', 'access.requested', 'access.requested', 'access.approved', 'access.approved', 'access.denied',
      'access.requested', 'access.requested', 'access.withdrawn', 'access.requested', 'access.denied', 'access.requested', 'access.withdrawn',
    ]);
    expect(e[0]).toMatchObject({ subject: noraB, va_id: vaB, details: { user: 'nora', va: 'Branch', role: 'va-viewer', justification } });
    expect(e[3]).toMatchObject({ subject: noraB, details: { user: 'nora', asked: 'va-viewer', role: 'va-viewer', vaId: vaB } });
    expect(e[4]).toMatchObject({ subject: vicB, details: { user: 'vic', asked: 'va-viewer', role: 'va-admin' } });
    expect(e[5]).toMatchObject({ subject: noraC, va_id: vaC, details: { reason: 'Campus is run by the campus team: ask them.' } });
    expect(e[8]).toMatchObject({ type: 'access.withdrawn', details: { user: 'vic', va: 'Campus' } });
  });
});
