import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { HEADER } from '../../src/device-api/signing.js';
import { request } from 'undici';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const reportsStored = () => h.count('SELECT count(*) FROM reports');
const inUse = (tag = TAG, va = h.defaultVa) =>
  h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE va_id = ? AND tag = ?', va, tag);

describe('when a registered device sends a signed report', () => {
  it('then it is stored, counted, and the device is seen', async () => {
    const d = await h.registered();
    const r = await d.sendReport(d.report(TAG, 3));
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('accepted');
    expect(reportsStored()).toBe(1);
    expect(inUse()).toBe(3);
    const dev = await h.api.get(`/api/v1/devices/${d.deviceId}`);
    expect(dev.body.lastSeq).toBe(1);
  });

  it('then replaying the same report answers duplicate and writes nothing', async () => {
    const d = await h.registered();
    const rep = d.report(TAG, 2);
    expect((await d.sendReport(rep)).body.status).toBe('accepted');
    const again = await d.sendReport(rep);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('duplicate');
    expect(reportsStored()).toBe(1);
    expect(inUse()).toBe(2);
  });

  it('then a batch of many reports is accepted in one request', async () => {
    const d = await h.registered();
    const t = Math.floor(Date.now() / 1000);
    const reports = Array.from({ length: 100 }, (_, i) => d.report(TAG, i % 5, t - 1000 + i));
    const r = await d.sendBatch(reports);
    expect(r.status).toBe(200);
    expect(r.body.results).toHaveLength(100);
    expect(r.body.results.every((x: { status: string }) => x.status === 'accepted')).toBe(true);
    expect(reportsStored()).toBe(100);
    expect(inUse()).toBe(99 % 5); // the latest period end wins
  });
});

describe('when a report is refused, nothing is written', () => {
  const refusals: [string, (h: Harness) => Promise<{ status: number; body: any }>, number, string][] = [
    ['an unknown device', async (h) => {
      const d = h.device();
      d.deviceId = 'dev_nope';
      return d.sendReport(d.report(TAG, 1));
    }, 401, 'unknown_device'],
    ['a deregistered device', async (h) => {
      const d = await h.registered();
      await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
      return d.sendReport(d.report(TAG, 1));
    }, 401, 'unknown_device'],
    ['a bad signature', async (h) => {
      const d = await h.registered();
      const other = h.device();
      other.deviceId = d.deviceId; // signs with a key that is not the device's
      return other.sendReport(other.report(TAG, 1));
    }, 401, 'bad_signature'],
    ['a stale timestamp', async (h) => {
      const d = await h.registered();
      return d.send('POST', '/device/v1/report', JSON.stringify(d.report(TAG, 1)), d.deviceId, Math.floor(Date.now() / 1000) - 301);
    }, 401, 'timestamp_stale'],
    ['a malformed body', async (h) => {
      const d = await h.registered();
      return d.send('POST', '/device/v1/report', '{"reportId": ');
    }, 400, 'malformed_json'],
    ['an unknown field', async (h) => {
      const d = await h.registered();
      return d.send('POST', '/device/v1/report', JSON.stringify({ ...d.report(TAG, 1), extra: true }));
    }, 400, 'invalid_report'],
    ['a missing field', async (h) => {
      const d = await h.registered();
      const { seq: _seq, ...rest } = d.report(TAG, 1);
      return d.send('POST', '/device/v1/report', JSON.stringify(rest));
    }, 400, 'invalid_report'],
    ['a measurement that is not an object', async (h) => {
      const d = await h.registered();
      return d.send('POST', '/device/v1/report', JSON.stringify({ ...d.report(TAG, 1), measurements: ['x'] }));
    }, 400, 'invalid_report'],
    ['a negative count', async (h) => {
      const d = await h.registered();
      return d.sendReport(d.report(TAG, -1));
    }, 400, 'invalid_report'],
    ['a count that is not an integer', async (h) => {
      const d = await h.registered();
      return d.sendReport(d.report(TAG, 1.5));
    }, 400, 'invalid_report'],
    ['a period that ends before it starts', async (h) => {
      const d = await h.registered();
      const r = d.report(TAG, 1);
      r.measurements[0]!.end = r.measurements[0]!.start - 1;
      return d.sendReport(r);
    }, 400, 'invalid_report'],
    ['a generation time too far in the future', async (h) => {
      const d = await h.registered();
      return d.sendReport(d.report(TAG, 1, Math.floor(Date.now() / 1000) + 3600));
    }, 400, 'generated_in_future'],
    ['an oversized body', async (h) => {
      const d = await h.registered();
      const reports = Array.from({ length: 900 }, (_, i) => ({ ...d.report(TAG, 1), reportId: `r${i}`.padEnd(120, 'x') }));
      return d.sendBatch(reports.map((r) => ({ ...r, measurements: Array(10).fill(r.measurements[0]) })));
    }, 413, 'body_too_large'],
    ['an empty batch', async (h) => {
      const d = await h.registered();
      return d.sendBatch([]);
    }, 400, 'invalid_batch'],
  ];

  for (const [what, send, status, code] of refusals) {
    it(`then ${what} gets ${status} ${code}`, async () => {
      const before = reportsStored();
      const r = await send(h);
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toBeTruthy();
      expect(reportsStored()).toBe(before);
      expect(inUse()).toBe(0);
    });
  }

  it('then an invalid report names the field that is wrong', async () => {
    const d = await h.registered();
    const r = await d.sendReport(d.report(TAG, -1));
    expect(r.body.error.message).toContain('measurements[0].count');
  });

  it('then a report id reused with different content is a conflict, and the batch holding it writes nothing', async () => {
    const d = await h.registered();
    const first = d.report(TAG, 1, undefined, 'same-id');
    await d.sendReport(first);
    const changed = { ...first, measurements: [{ ...first.measurements[0]!, count: 7 }] };
    const fresh = d.report(TAG2, 4);
    const r = await d.sendBatch([fresh, changed]);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('report_id_reused');
    expect(reportsStored()).toBe(1);
    expect(inUse(TAG2)).toBe(0);
    expect(inUse()).toBe(1);
  });

  it('then missing signature headers are refused and counted as a security refusal', async () => {
    const d = await h.registered();
    const res = await request(`${h.url}/device/v1/report`, {
      method: 'POST', body: JSON.stringify(d.report(TAG, 1)), headers: { [HEADER.device]: d.deviceId! },
    });
    expect(res.statusCode).toBe(401);
    await res.body.text();
    const totals = await h.api.get('/api/v1/security/refusals');
    expect(totals.body.signature_missing).toBe(1);
  });
});

describe('what "in use" means', () => {
  it('when a late report with an older period arrives, then it never lowers the count', async () => {
    const d = await h.registered();
    const t = Math.floor(Date.now() / 1000);
    await d.sendReport(d.report(TAG, 5, t));
    expect(inUse()).toBe(5);
    const late = await d.sendReport(d.report(TAG, 1, t - 86_400));
    expect(late.body.status).toBe('accepted');
    expect(inUse()).toBe(5);
    await d.sendReport(d.report(TAG, 2, t + 1));
    expect(inUse()).toBe(2);
  });

  it('when several devices report, then the VA counts the sum over its devices', async () => {
    const a = await h.registered();
    const b = await h.registered();
    await a.sendReport(a.report(TAG, 3));
    await b.sendReport(b.report(TAG, 4));
    expect(inUse()).toBe(7);
    const c = await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/compliance`);
    expect(c.body.tags[0]).toMatchObject({ tag: TAG, inUse: 7, devices: 2, status: 'not_authorized' });
  });

  it('when a device is deregistered, then its licenses are released at once', async () => {
    const a = await h.registered();
    const b = await h.registered();
    await a.sendReport(a.report(TAG, 3));
    await b.sendReport(b.report(TAG, 4));
    await h.api.post(`/api/v1/devices/${a.deviceId}/deregister`).expect(200);
    expect(inUse()).toBe(4);
  });

  it('when a device is moved, then it counts in its new VA from the move', async () => {
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id;
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 3));
    await h.api.post(`/api/v1/devices/${d.deviceId}/move`).send({ vaId: other }).expect(200);
    expect(inUse(TAG, h.defaultVa)).toBe(0);
    expect(inUse(TAG, other)).toBe(3);
    await d.sendReport(d.report(TAG, 6, Math.floor(Date.now() / 1000) + 1));
    expect(inUse(TAG, other)).toBe(6);
    expect(inUse(TAG, h.defaultVa)).toBe(0);
  });

  it('when a device reports two tags in one report, then each tag counts its own latest measurement', async () => {
    const d = await h.registered();
    const t = Math.floor(Date.now() / 1000);
    const r = await d.sendReport({
      reportId: 'two-tags', seq: 1, generatedAt: t,
      measurements: [
        { tag: TAG, count: 2, start: t - 200, end: t - 100 },
        { tag: TAG, count: 5, start: t - 100, end: t },
        { tag: TAG2, count: 1, start: t - 100, end: t },
      ],
    });
    expect(r.status).toBe(200);
    expect(inUse(TAG)).toBe(5);
    expect(inUse(TAG2)).toBe(1);
  });
});

describe('when the database cannot take the write', () => {
  it('then the device gets 503 with retry-after, not a 2xx, and nothing is half-written', async () => {
    const d = await h.registered();
    h.services.db.pragma('query_only = ON'); // every write now fails, as on a full or failing disk
    const r = await d.sendReport(d.report(TAG, 3));
    h.services.db.pragma('query_only = OFF');
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('storage_unavailable');
    expect(r.headers['retry-after']).toBe('30');
    expect(reportsStored()).toBe(0);
    expect(inUse()).toBe(0);
    expect((await d.sendReport(d.report(TAG, 3))).status).toBe(200);
  });
});

describe('when a signed report claims a period that ends far ahead', () => {
  it('then it is refused (period_in_future) and cannot pin the device\'s count: later reports still count', async () => {
    const d = await h.registered();
    const now = Math.floor(Date.now() / 1000);
    const pinned = { reportId: 'pin-3000', seq: 1, generatedAt: now, measurements: [{ tag: TAG, count: 0, start: now - 60, end: 32503679999 }] };
    const r = await d.sendReport(pinned);
    expect([r.status, r.body.error.code]).toEqual([400, 'period_in_future']);
    expect(r.body.error.message).toContain('device.maxFutureSkewSeconds');
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
    expect((await d.sendReport(d.report(TAG, 4))).status).toBe(200);
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(4);
  });
});
