import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('virtual accounts', () => {
  it('when the collector first starts, then there is one account and a Default VA, marked local', async () => {
    const acc = (await h.api.get('/api/v1/account')).body;
    expect(acc).toMatchObject({ id: expect.stringMatching(/^acc_/), virtualAccounts: 1 });
    const vas = (await h.api.get('/api/v1/virtual-accounts')).body.items;
    expect(vas).toHaveLength(1);
    expect(vas[0]).toMatchObject({ name: 'Default', origin: 'local', confirmed: false });
  });

  it('when a VA is renamed, then its id stays and the rename is an event', async () => {
    const va = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body;
    const renamed = (await h.api.patch(`/api/v1/virtual-accounts/${va.id}`).send({ name: 'Campus North' }).expect(200)).body;
    expect(renamed.id).toBe(va.id);
    expect(renamed.name).toBe('Campus North');
    expect((await h.api.get('/api/v1/virtual-accounts/Campus%20North')).body.id).toBe(va.id);
    const ev = (await h.api.get(`/api/v1/events?type=va.renamed`)).body.items[0];
    expect(ev.details).toEqual({ from: 'Campus', to: 'Campus North' });
  });

  it('when a name is taken (in any case), then creating or renaming to it is a conflict', async () => {
    await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201);
    const r = await h.api.post('/api/v1/virtual-accounts').send({ name: 'LAB' });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('name_taken');
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Other' })).body;
    expect((await h.api.patch(`/api/v1/virtual-accounts/${other.id}`).send({ name: 'lab' })).status).toBe(409);
  });

  it('when a VA is empty, then it can be deleted; when it holds devices, then not', async () => {
    const va = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Temp' })).body;
    const d = await h.registered(undefined, va.id);
    await d.sendReport(d.report(TAG, 1));
    const refused = await h.api.delete(`/api/v1/virtual-accounts/${va.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toMatchObject({ devices: 1 });
    const empty = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Empty' })).body;
    await h.api.delete(`/api/v1/virtual-accounts/${empty.id}`).expect(204);
    expect((await h.api.get(`/api/v1/virtual-accounts/${empty.id}`)).status).toBe(404);
  });

  it('when a body is invalid, then the error names the field and nothing is created', async () => {
    const r = await h.api.post('/api/v1/virtual-accounts').send({ name: '', color: 'red' });
    expect(r.status).toBe(400);
    expect(r.body.error.details.issues.map((i: { path: string }) => i.path)).toEqual(expect.arrayContaining(['name']));
    expect((await h.api.get('/api/v1/virtual-accounts')).body.items).toHaveLength(1);
  });
});

describe('registration tokens', () => {
  it('when a token is created, then its secret is shown once and stored only as a hash', async () => {
    const r = await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'closet switches', maxUses: 5, expiresInDays: 7 });
    expect(r.status).toBe(201);
    expect(r.body.secret).toMatch(/^opt_[A-Za-z0-9_-]{43}$/);
    expect(r.body).toMatchObject({ maxUses: 5, uses: 0, state: 'active', description: 'closet switches' });
    const list = (await h.api.get('/api/v1/tokens')).body.items;
    expect(list[0].secret).toBeUndefined();
    expect(JSON.stringify(list)).not.toContain(r.body.secret);
    const row = h.services.db.prepare('SELECT * FROM tokens').get() as Record<string, unknown>;
    expect(JSON.stringify(row)).not.toContain(r.body.secret.slice(4));
    const ev = JSON.stringify((await h.api.get('/api/v1/events?type=token.created')).body);
    expect(ev).not.toContain(r.body.secret.slice(4));
  });

  it('when a token is revoked twice, then the second is a conflict', async () => {
    const t = (await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'x' })).body;
    expect((await h.api.post(`/api/v1/tokens/${t.id}/revoke`)).body.state).toBe('revoked');
    expect((await h.api.post(`/api/v1/tokens/${t.id}/revoke`)).status).toBe(409);
    expect((await h.api.get(`/api/v1/tokens?vaId=${h.defaultVa}`)).body.items[0].state).toBe('revoked');
  });

  it('when a token names a VA that does not exist, then 404 names it', async () => {
    const r = await h.api.post('/api/v1/tokens').send({ vaId: 'va_missing', description: 'x' });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toContain('va_missing');
  });
});
