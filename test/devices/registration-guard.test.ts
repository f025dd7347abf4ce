import http from 'node:http';
import { request } from 'undici';
import { createRequestHandler } from '../../src/main.js';
import { close, listen } from '../../src/http/server.js';
import { inlineVerifier, type SignatureVerifier } from '../../src/device-api/verifier.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HEADER, REGISTRATION_DEVICE_ID, signRequest } from '../../src/device-api/signing.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';

let h: Harness;
let lab: string;
beforeEach(async () => {
  h = await startHarness();
  lab = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id;
});
afterEach(() => h.close());

const now = () => Math.floor(Date.now() / 1000);
const inUse = (va: string) => h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE va_id = ?', va);
const tokenUses = () => h.count('SELECT coalesce(sum(uses), 0) FROM tokens');
// Refusals are counted in the trail (security.refused); nothing else may be written.
const eventCount = () => h.count("SELECT count(*) FROM events WHERE type <> 'security.refused'");

async function importRum(serial: string, count: number) {
  const t = now();
  const xml = smartLicense(rumElement({ pid: 'C9300-24T', serial, reportId: 1, tag: TAG, measurements: [{ start: t - 3600, end: t, count }] }));
  await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(xml).expect(200);
  return h.count('SELECT count(*) FROM devices WHERE udi_serial = ?', serial) === 1
    ? (h.services.db.prepare('SELECT id FROM devices WHERE udi_serial = ?').get(serial) as { id: string }).id
    : '';
}

describe('a token admits new devices into its own VA only', () => {
  it('when a token of another VA claims a keyless device known from RUM files, then it waits for an operator and the attacker cannot report', async () => {
    const id = await importRum('RUMKEYLESS1', 12);
    expect(inUse(h.defaultVa)).toBe(12);
    const attacker = h.device('RUMKEYLESS1');
    const r = await attacker.register(await h.token({ vaId: lab }));
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ status: 'pending_approval', deviceId: id });
    const dev = (await h.api.get(`/api/v1/devices/${id}`)).body;
    expect(dev).toMatchObject({ publicKey: null, vaId: h.defaultVa, source: 'rum', pendingRekey: { reason: 'claim_keyless' } });
    attacker.deviceId = id;
    const report = await attacker.sendReport(attacker.report(TAG, 0));
    expect(report.status).toBe(401);
    expect(inUse(h.defaultVa)).toBe(12);
    expect(inUse(lab)).toBe(0);
    const alert = (await h.api.get('/api/v1/alerts?kind=rekey_pending')).body.items[0];
    expect(alert.message).toContain('known from RUM files');
  });

  it('when a token of its own VA claims a keyless device, then that too waits for an operator, and approval gives it the key', async () => {
    const id = await importRum('RUMKEYLESS2', 5);
    const d = h.device('RUMKEYLESS2');
    const r = await d.register(await h.token());
    expect([r.status, r.body.status]).toEqual([202, 'pending_approval']);
    await h.api.post(`/api/v1/devices/${id}/rekey/approve`).expect(200);
    d.deviceId = id;
    expect((await h.api.get(`/api/v1/devices/${id}`)).body).toMatchObject({ publicKey: d.publicKey, source: 'registered', pendingRekey: null });
    expect((await d.sendReport(d.report(TAG, 6))).status).toBe(200);
    expect(inUse(h.defaultVa)).toBe(6);
  });

  it('when a deregistered device registers again with its old key and another VA\'s token, then it stays deregistered until an operator approves', async () => {
    const d = await h.registered('DEREGBACK1');
    await d.sendReport(d.report(TAG, 4));
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    const r = await d.register(await h.token({ vaId: lab }));
    expect([r.status, r.body.status]).toEqual([202, 'pending_approval']);
    expect(r.body.message).toContain('deregistered');
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}`)).body).toMatchObject({ status: 'deregistered', vaId: h.defaultVa, pendingRekey: { reason: 'revive' } });
    expect((await d.sendReport(d.report(TAG, 9))).status).toBe(401);
    expect(inUse(h.defaultVa) + inUse(lab)).toBe(0);

    await h.api.post(`/api/v1/devices/${d.deviceId}/rekey/approve`).expect(200);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}`)).body).toMatchObject({ status: 'active', vaId: h.defaultVa });
    expect((await d.sendReport(d.report(TAG, 2))).status).toBe(200);
    expect(inUse(h.defaultVa)).toBe(2);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
  });
});

describe('a captured registration replayed within the signature window', () => {
  it('when it is sent again, then nothing changes: no token use, no status, no event', async () => {
    const token = await h.token({ maxUses: 10 });
    const d = h.device('REPLAY1');
    const body = JSON.stringify({ token, udi: d.udi, hostname: 'r', softwareVersion: '17.9.1', publicKey: d.publicKey });
    const ts = String(now());
    const path = '/device/v1/register';
    const signature = signRequest(d.privateKey, { method: 'POST', path, collectorId: d.collectorId, deviceId: REGISTRATION_DEVICE_ID, timestamp: ts, body });
    const captured = { [HEADER.timestamp]: ts, [HEADER.signature]: signature, 'content-type': 'application/json' };
    const send = async (headers = captured) => {
      const res = await request(h.url + path, { method: 'POST', headers, body });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    const first = await send();
    expect(first.status).toBe(201);
    const deviceId = first.body.deviceId as string;
    await h.api.post(`/api/v1/devices/${deviceId}/deregister`).expect(200);
    const uses = tokenUses();
    const events = eventCount();
    for (let i = 0; i < 3; i++) {
      const again = await send();
      expect([again.status, again.body.error.code]).toEqual([409, 'registration_replayed']);
    }
    // Another spelling of the same signature bytes is the same request.
    const respelled = await send({ ...captured, [HEADER.signature]: signature.replace(/=+$/, '') });
    expect(respelled.status).toBe(409);
    expect(tokenUses()).toBe(uses);
    expect(eventCount()).toBe(events);
    expect(h.count("SELECT count(*) FROM events WHERE type = 'security.refused' AND subject = 'registration_replayed'")).toBeGreaterThan(0);
    expect((await h.api.get(`/api/v1/devices/${deviceId}`)).body.status).toBe('deregistered');
  });
});

describe('registrations cannot flood the signature checks', () => {
  it('when registrations carry a bad token, then no signature is checked; with a good one, the key is checked without being cached', async () => {
    const calls: boolean[] = [];
    const inner = inlineVerifier();
    const counting: SignatureVerifier = {
      verify: (k, s, d, cache) => (calls.push(cache ?? true), inner.verify(k, s, d, cache)),
      close: () => inner.close(),
    };
    const server = http.createServer(createRequestHandler(h.services, counting));
    await listen(server, 0, '127.0.0.1');
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      for (let i = 0; i < 20; i++) {
        const d = new SimulatedDevice(url, h.services.identity.collectorId, { pid: 'C9300-24T', serial: `FLOOD${i}` });
        const r = await d.register('opt_' + 'x'.repeat(40));
        expect(r.status).toBe(403);
      }
      expect(calls).toEqual([]);
      const d = new SimulatedDevice(url, h.services.identity.collectorId, { pid: 'C9300-24T', serial: 'FLOODOK' });
      expect((await d.register(await h.token())).status).toBe(201);
      expect(calls).toEqual([false]);
    } finally {
      await close(server);
    }
  });
});
