import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rekeyProofString } from '../../src/device-api/signing.js';
import { generateKeyPair, privateKeyObject, signWith } from '../../src/shared/ed25519.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('when a device registers with a valid token', () => {
  it('then it gets its id, its VA, the policy and the collector key', async () => {
    const d = h.device('FOC1234X001');
    const r = await d.register(await h.token());
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      status: 'registered',
      deviceId: expect.stringMatching(/^dev_/),
      virtualAccount: { id: h.defaultVa, name: 'Default' },
      policy: { version: 0, reportingIntervalDays: 30, ackDueDays: 90 },
      collector: { id: h.services.identity.collectorId, publicKey: h.services.identity.publicKeyB64 },
    });
    const ev = await h.api.get('/api/v1/events?type=device.registered');
    expect(ev.body.items[0].subject).toBe(r.body.deviceId);
  });

  it('then a registration not signed by the presented key is refused and spends no token use', async () => {
    const token = await h.token({ maxUses: 1 });
    const d = h.device();
    const body = JSON.stringify({ token, udi: d.udi, hostname: 'x', softwareVersion: '1', publicKey: generateKeyPair().publicKey.toString('base64') });
    const r = await d.send('POST', '/device/v1/register', body, '-');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('bad_signature');
    expect((await h.device().register(token)).status).toBe(201);
  });
});

describe('when a token is not usable', () => {
  it('then an expired token is refused with that reason', async () => {
    const token = await h.token({ expiresInDays: 1 });
    const row = h.services.db.prepare('SELECT id FROM tokens').get() as { id: string };
    h.services.db.prepare('UPDATE tokens SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, row.id);
    const r = await h.device().register(token);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('token_expired');
    expect(h.count('SELECT count(*) FROM devices')).toBe(0);
  });

  it('then a revoked token is refused with that reason', async () => {
    const token = await h.token();
    const list = await h.api.get('/api/v1/tokens');
    await h.api.post(`/api/v1/tokens/${list.body.items[0].id}/revoke`).expect(200);
    const r = await h.device().register(token);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('token_revoked');
  });

  it('then a used-up token is refused with that reason', async () => {
    const token = await h.token({ maxUses: 2 });
    expect((await h.device().register(token)).status).toBe(201);
    expect((await h.device().register(token)).status).toBe(201);
    const r = await h.device().register(token);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('token_used_up');
    expect(h.count('SELECT count(*) FROM devices')).toBe(2);
  });

  it('then an unknown token is refused', async () => {
    const r = await h.device().register('opt_' + 'A'.repeat(43));
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('token_unknown');
  });
});

describe('when someone presents a valid token and a known UDI with a new key (take-over)', () => {
  it('then they get no control of the device: a pending re-key, the old key still rules', async () => {
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Elsewhere' }).expect(201)).body.id;
    const owner = await h.registered('FOC-VICTIM');
    await owner.sendReport(owner.report(TAG, 2));

    const impostor = h.device('FOC-VICTIM');
    const r = await impostor.register(await h.token({ vaId: other }));
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending_rekey');
    impostor.deviceId = r.body.deviceId;

    // The impostor cannot report as the device...
    const forged = await impostor.sendReport(impostor.report(TAG, 50));
    expect(forged.status).toBe(401);
    // ...the owner still can, the VA did not change, and an operator is alerted.
    expect((await owner.sendReport(owner.report(TAG, 3, Math.floor(Date.now() / 1000) + 1))).status).toBe(200);
    const dev = (await h.api.get(`/api/v1/devices/${owner.deviceId}`)).body;
    expect(dev.vaId).toBe(h.defaultVa);
    expect(dev.publicKey).toBe(owner.publicKey);
    expect(dev.pendingRekey.publicKey).toBe(impostor.publicKey);
    const alerts = (await h.api.get('/api/v1/alerts?kind=rekey_pending')).body.items;
    expect(alerts.map((a: { subject: string }) => a.subject)).toContain(owner.deviceId);
  });

  it('then an operator who refuses it leaves the old key in place', async () => {
    const owner = await h.registered('FOC-R1');
    const impostor = h.device('FOC-R1');
    await impostor.register(await h.token());
    await h.api.post(`/api/v1/devices/${owner.deviceId}/rekey/refuse`).expect(200);
    const dev = (await h.api.get(`/api/v1/devices/${owner.deviceId}`)).body;
    expect(dev.pendingRekey).toBeNull();
    expect(dev.publicKey).toBe(owner.publicKey);
    expect((await h.api.get('/api/v1/alerts?kind=rekey_pending')).body.items).toHaveLength(0);
  });

  it('then an operator who approves it hands the device to the new key', async () => {
    const owner = await h.registered('FOC-A1');
    const replacement = h.device('FOC-A1');
    await replacement.register(await h.token());
    await h.api.post(`/api/v1/devices/${owner.deviceId}/rekey/approve`).expect(200);
    replacement.deviceId = owner.deviceId;
    expect((await replacement.sendReport(replacement.report(TAG, 1))).status).toBe(200);
    expect((await owner.sendReport(owner.report(TAG, 1))).status).toBe(401);
    const types = (await h.api.get(`/api/v1/events?subject=${owner.deviceId}`)).body.items.map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['device.rekey_requested', 'device.rekeyed']));
  });

  it('then approving a device with nothing pending is a clear conflict', async () => {
    const d = await h.registered();
    const r = await h.api.post(`/api/v1/devices/${d.deviceId}/rekey/approve`);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('no_pending_rekey');
  });
});

describe('when a device re-keys with a request signed by its current key', () => {
  it('then the new key takes effect at once', async () => {
    const d = await h.registered();
    const next = generateKeyPair();
    const ts = String(Math.floor(Date.now() / 1000));
    const newPublicKey = next.publicKey.toString('base64');
    const proof = signWith(privateKeyObject(next.seed), rekeyProofString({ collectorId: h.services.identity.collectorId, deviceId: d.deviceId!, newPublicKey, timestamp: ts })).toString('base64');
    const r = await d.send('POST', '/device/v1/rekey', JSON.stringify({ publicKey: newPublicKey, proof }), d.deviceId, Number(ts));
    expect(r.status).toBe(200);
    const dev = (await h.api.get(`/api/v1/devices/${d.deviceId}`)).body;
    expect(dev.publicKey).toBe(newPublicKey);
    expect((await d.sendReport(d.report(TAG, 1))).status).toBe(401); // the old key no longer signs
  });

  it('then a proof that does not verify with the new key is refused', async () => {
    const d = await h.registered();
    const newPublicKey = generateKeyPair().publicKey.toString('base64');
    const r = await d.send('POST', '/device/v1/rekey', JSON.stringify({ publicKey: newPublicKey, proof: Buffer.alloc(64).toString('base64') }));
    expect(r.status).toBe(401);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}`)).body.publicKey).toBe(d.publicKey);
  });
});

describe('when a device registers again with its own key', () => {
  it('then it keeps its id and VA', async () => {
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Other' }).expect(201)).body.id;
    const d = await h.registered('FOC-SAME');
    const first = d.deviceId;
    const r = await d.register(await h.token({ vaId: other }));
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('re_registered');
    expect(r.body.deviceId).toBe(first);
    expect(r.body.virtualAccount.id).toBe(h.defaultVa);
  });
});

describe('operators list and filter devices', () => {
  it('by VA, status, product id and last seen, with paging', async () => {
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id;
    const a = await h.registered();
    await h.registered();
    const c = await h.registered(undefined, other);
    await h.api.post(`/api/v1/devices/${a.deviceId}/deregister`).expect(200);
    expect((await h.api.get(`/api/v1/devices?vaId=${other}`)).body.items.map((d: { id: string }) => d.id)).toEqual([c.deviceId]);
    expect((await h.api.get('/api/v1/devices?vaId=Lab')).body.items).toHaveLength(1);
    expect((await h.api.get('/api/v1/devices?status=deregistered')).body.items).toHaveLength(1);
    expect((await h.api.get('/api/v1/devices?pid=C9300-24T')).body.items).toHaveLength(3);
    expect((await h.api.get('/api/v1/devices?pid=NOPE')).body.items).toHaveLength(0);
    expect((await h.api.get('/api/v1/devices?seenBefore=2000-01-01T00:00:00Z')).body.items).toHaveLength(0);
    const page1 = (await h.api.get('/api/v1/devices?limit=2')).body;
    expect(page1.items).toHaveLength(2);
    const page2 = (await h.api.get(`/api/v1/devices?limit=2&cursor=${page1.nextCursor}`)).body;
    expect(page2.items).toHaveLength(1);
    expect(page2.nextCursor).toBeNull();
    const bad = await h.api.get('/api/v1/devices?status=sleeping');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('status');
  });
});
