import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { HEADER, LEGACY_REPLY_SIGNATURE_UNTIL, replyString } from '../../src/device-api/signing.js';
import { ManualClock } from '../../src/shared/clock.js';
import { publicKeyObject, verifyWith } from '../../src/shared/ed25519.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('when a device asks for its ACKs', () => {
  it('then it gets what the upstream acknowledged and how many are pending, signed by the collector', async () => {
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'a-1'));
    await d.sendReport(d.report(TAG, 2, undefined, 'a-2'));
    // The upstream's response (the exchange issue) marks reports; here one is acknowledged.
    const id = (h.services.db.prepare("SELECT id FROM reports WHERE report_id = 'a-1'").get() as { id: number }).id;
    h.services.db.prepare('DELETE FROM report_pending WHERE report_id = ?').run(id);
    h.services.db.prepare("INSERT INTO report_acks (destination, report_id, status, reason, acked_at) VALUES ('outpost', ?, 'accepted', NULL, ?)").run(id, Date.now());

    const r = await d.send('GET', '/device/v1/acks', '');
    expect(r.status).toBe(200);
    expect(r.body.pending).toBe(1);
    expect(r.body.acks).toEqual([{ reportId: 'a-1', status: 'accepted', reason: null, ackedAt: expect.any(String) }]);

    const sig = Buffer.from(String(r.headers[HEADER.collectorSignature]), 'base64');
    const collectorKey = publicKeyObject(h.services.identity.publicKey);
    expect(verifyWith(collectorKey, JSON.stringify(r.body), sig)).toBe(true);
    expect(verifyWith(collectorKey, JSON.stringify({ ...r.body, pending: 0 }), sig)).toBe(false);
  });

  it('then the reply is signed for that request of that device (version 2), so it cannot be replayed to another device or later', async () => {
    const a = await h.registered();
    const b = await h.registered();
    const key = publicKeyObject(h.services.identity.publicKey);
    const ra = await a.send('GET', '/device/v1/acks?since=0', '', a.deviceId, 1_800_000_000);
    expect(ra.status).toBe(401); // a timestamp outside the window is refused before anything is signed
    const t = Math.floor(Date.now() / 1000);
    const replyA = await a.send('GET', '/device/v1/acks?since=0', '', a.deviceId, t);
    const replyB = await b.send('GET', '/device/v1/acks?since=0', '', b.deviceId, t);
    expect(JSON.stringify(replyA.body)).toBe(JSON.stringify(replyB.body)); // the same body, as in the attack
    const sigA = Buffer.from(String(replyA.headers[HEADER.replySignature]), 'base64');
    const sigB = Buffer.from(String(replyB.headers[HEADER.replySignature]), 'base64');
    expect(sigA.equals(sigB)).toBe(false);
    const expected = (deviceId: string, timestamp: number) =>
      replyString({ method: 'GET', path: '/device/v1/acks?since=0', collectorId: h.services.identity.collectorId, deviceId, timestamp: String(timestamp), body: JSON.stringify(replyA.body) });
    expect(verifyWith(key, expected(a.deviceId!, t), sigA)).toBe(true);
    expect(verifyWith(key, expected(b.deviceId!, t), sigA)).toBe(false); // not for another device
    expect(verifyWith(key, expected(a.deviceId!, t + 60), sigA)).toBe(false); // not for a later request
    // Version 1 (the body alone) is still sent during its stated period.
    expect(replyA.headers[HEADER.collectorSignature]).toBeDefined();
  });

  it('then after the stated period the version-1 signature (the body alone) is no longer sent', async () => {
    await h.close();
    const clock = new ManualClock(LEGACY_REPLY_SIGNATURE_UNTIL + 1000);
    h = await startHarness({ clock });
    const d = await h.registered();
    const r = await d.send('GET', '/device/v1/acks', '');
    expect(r.status).toBe(200);
    expect(r.headers[HEADER.collectorSignature]).toBeUndefined();
    expect(r.headers[HEADER.replySignature]).toBeDefined();
  });

  it('then another device cannot read them', async () => {
    const a = await h.registered();
    const b = await h.registered();
    await a.sendReport(a.report(TAG, 1));
    const r = await b.send('GET', '/device/v1/acks', '');
    expect(r.body.pending).toBe(0);
    const forged = await b.send('GET', '/device/v1/acks', '', a.deviceId);
    expect(forged.status).toBe(401);
  });
});

describe('device API edges', () => {
  it('when a batch holds more reports than allowed, then 400 names the limit', async () => {
    await h.close();
    h = await startHarness({ config: { device: { maxReportsPerBatch: 3 } } });
    const d = await h.registered();
    const r = await d.sendBatch([1, 2, 3, 4].map((i) => d.report(TAG, i)));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('reports');
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
  });

  it('when a registration carries a public key that is not 32 bytes, then it is named', async () => {
    const d = h.device();
    const body = JSON.stringify({ token: await h.token(), udi: d.udi, publicKey: 'c2hvcnQ=' });
    const r = await d.send('POST', '/device/v1/register', body, '-');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('publicKey');
  });

  it('when a route does not exist, then 404 in the one error shape', async () => {
    const d = await h.registered();
    const r = await d.send('POST', '/device/v1/nothing', '{}');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
  });
});
