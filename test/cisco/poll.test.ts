import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';

let h: Harness | undefined;
let fake: FakeIosXe | undefined;
afterEach(async () => {
  await h?.close();
  await fake?.stop();
  h = fake = undefined;
});

const fingerprint = (pemFile: string) => new X509Certificate(readFileSync(pemFile)).fingerprint256.toLowerCase();

async function site(count: number, over: Parameters<typeof startFakeIosXe>[0] = { count }) {
  const ca = makeTestCa();
  fake = await startFakeIosXe({ ca, ...over, count });
  h = await startHarness({ config: { cisco: { caFile: ca.caFile, timeoutSeconds: 2, retries: 0, concurrency: 4 } } });
  const ids: string[] = [];
  for (const d of fake.devices) {
    const r = await h.api.post('/api/v1/cisco/devices').send({ name: `sw-${d.index}`, host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201);
    ids.push(r.body.id);
  }
  return { ca, ids };
}

const poll = async (device?: string) => (await h!.api.post('/api/v1/cisco/poll').send(device ? { device } : {}).expect(200)).body.items as {
  name: string; ok: boolean; accepted: number; replaced: number; duplicate: number; error: { code: string; message: string } | null;
}[];

describe('polling IOS-XE devices', () => {
  it('when devices are polled, then their reports are closed, fetched and stored byte for byte, and a second poll stores nothing twice', async () => {
    await site(3);
    const first = await poll();
    expect(first.map((p) => [p.ok, p.accepted])).toEqual([[true, 2], [true, 2], [true, 2]]);
    for (const d of fake!.devices) {
      expect(d.seen.map((s) => `${s.method} ${s.path}`).slice(0, 2)).toEqual(['POST /smartlic-service/close-reports', 'GET /smartlic-service/all-reports']);
      const stored = h!.services.db
        .prepare("SELECT r.body FROM reports r JOIN devices v ON v.id = r.device_id WHERE v.udi_serial = ? ORDER BY r.id")
        .pluck()
        .all(d.udi.serial) as string[];
      expect(stored).toEqual(d.lastAllReports!.elements);
    }
    const again = await poll();
    expect(again.every((p) => p.ok && p.accepted === 0)).toBe(true);
    const listed = (await h!.api.get('/api/v1/cisco/devices')).body.items;
    expect(listed.every((d: { lastSuccessAt: string | null; reports: number }) => d.lastSuccessAt !== null && d.reports === 2)).toBe(true);
  });

  it('when devices fail (wrong password, down, slow, wrong certificate, malformed answer), then each says why in its status, the others are polled, and nothing of theirs is stored', async () => {
    const { ca } = await site(6);
    fake!.device(0).password = 'changed-on-the-device';
    await fake!.setFaults(1, { down: true });
    await fake!.setFaults(2, { delayMs: 4000 });
    await fake!.setFaults(3, { cert: ca.otherName });
    await fake!.setFaults(4, { malformed: 'not-json' });
    const r = await poll();
    expect(r.map((p) => [p.name, p.ok, p.error?.code ?? null])).toEqual([
      ['sw-0', false, 'auth'], ['sw-1', false, 'unreachable'], ['sw-2', false, 'timeout'], ['sw-3', false, 'tls'], ['sw-4', false, 'malformed'], ['sw-5', true, null],
    ]);
    expect(r[0]!.error!.message).toContain('refused the username and password');
    expect(h!.count("SELECT count(*) FROM reports WHERE source = 'rum'")).toBe(2); // sw-5's alone
    const status = (await h!.api.get('/api/v1/cisco/devices')).body.items.find((d: { name: string }) => d.name === 'sw-3');
    expect(status.lastError).toContain('(tls)');
    expect(status.lastSuccessAt).toBeNull();
  });

  it('when a device presents a self-signed certificate, then it is refused in ca mode, accepted once pinned, and refused again when the pin differs', async () => {
    const ca = makeTestCa();
    fake = await startFakeIosXe({ count: 1, ca, cert: ca.selfSigned });
    h = await startHarness({ config: { cisco: { caFile: ca.caFile, timeoutSeconds: 2, retries: 0 } } });
    const d = fake.devices[0]!;
    const id = (await h.api.post('/api/v1/cisco/devices').send({ name: 'sw', host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201)).body.id;
    const refused = (await poll())[0]!;
    expect(refused.error?.code).toBe('tls');
    const pin = fingerprint(ca.selfSigned.cert);
    expect(refused.error?.message).toContain(pin); // what the device presented, to confirm and pin
    await h.api.patch(`/api/v1/cisco/devices/${id}`).send({ tls: { mode: 'pin', pin } }).expect(200);
    expect((await poll())[0]).toMatchObject({ ok: true, accepted: 2 });
    await h.api.patch(`/api/v1/cisco/devices/${id}`).send({ tls: { mode: 'pin', pin: fingerprint(ca.server.cert) } }).expect(200);
    expect((await poll())[0]!.error?.code).toBe('tls');
  });

  it('when an open report grows between polls, then the grown copy replaces the earlier one', async () => {
    await site(1, { count: 1 });
    await fake!.setFaults(0, { ignoreClose: true, growOnPoll: true });
    expect((await poll())[0]).toMatchObject({ ok: true });
    const second = (await poll())[0]!;
    expect(second).toMatchObject({ ok: true, replaced: 1 });
  });

  it('when a device is tried, then the certificate it presents is shown; confirmed with that fingerprint, it is pinned, and a wrong one pins nothing', async () => {
    const ca = makeTestCa();
    fake = await startFakeIosXe({ count: 1, ca, cert: ca.selfSigned });
    h = await startHarness({ config: { cisco: { caFile: ca.caFile, timeoutSeconds: 2, retries: 0 } } });
    const d = fake.devices[0]!;
    const id = (await h.api.post('/api/v1/cisco/devices').send({ name: 'sw', host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201)).body.id;
    const pin = fingerprint(ca.selfSigned.cert);
    const tried = (await h.api.post(`/api/v1/cisco/devices/${id}/test`).send({}).expect(200)).body;
    expect(tried).toMatchObject({ presented: pin, trusted: false, authenticated: false, pinned: false, error: { code: 'tls' } });
    const wrong = await h.api.post(`/api/v1/cisco/devices/${id}/test`).send({ confirm: fingerprint(ca.server.cert) });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe('fingerprint_mismatch');
    expect((await h.api.get(`/api/v1/cisco/devices/${id}`)).body.tls.mode).toBe('ca');
    const confirmed = (await h.api.post(`/api/v1/cisco/devices/${id}/test`).send({ confirm: pin }).expect(200)).body;
    expect(confirmed.pinned).toBe(true);
    const again = (await h.api.post(`/api/v1/cisco/devices/${id}/test`).send({}).expect(200)).body;
    expect(again).toMatchObject({ presented: pin, trusted: true, authenticated: true, error: null });
    expect(d.seen.filter((s) => s.path === '/smartlic-service/list').length).toBeGreaterThan(0);
    expect(h.count('SELECT count(*) FROM reports')).toBe(0); // trying stores nothing
  });
});
