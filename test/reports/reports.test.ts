import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const now = () => Math.floor(Date.now() / 1000);
const stored = (deviceId: string, reportId: string) =>
  (h.services.db.prepare('SELECT body FROM reports WHERE device_id = ? AND report_id = ?').get(deviceId, reportId) as { body: string }).body;

describe("when an operator reads a device's stored reports", () => {
  it('then the list names each, newest first, and a device report comes back as its stored JSON', async () => {
    const d = await h.registered();
    for (const id of ['r-1', 'r-2', 'r-3']) expect((await d.sendReport(d.report(TAG, 2, now(), id))).status).toBe(200);
    const list = (await h.api.get(`/api/v1/devices/${d.deviceId}/reports?limit=2`).expect(200)).body;
    expect(list.items.map((r: { reportId: string }) => r.reportId)).toEqual(['r-3', 'r-2']);
    expect(list.items[0]).toMatchObject({ source: 'device', measurements: 1, bytes: Buffer.byteLength(stored(d.deviceId!, 'r-3')) });
    const rest = (await h.api.get(`/api/v1/devices/${d.deviceId}/reports?limit=2&cursor=${list.nextCursor}`).expect(200)).body;
    expect(rest.items.map((r: { reportId: string }) => r.reportId)).toEqual(['r-1']);
    const one = (await h.api.get(`/api/v1/devices/${d.deviceId}/reports/r-2`).expect(200)).body;
    expect(one).toMatchObject({ deviceId: d.deviceId, reportId: 'r-2', source: 'device', contentType: 'application/json' });
    expect(one.original).toBe(stored(d.deviceId!, 'r-2'));
  });

  it('then a RUM report comes back as the element received, and an id held by both sources must be told apart', async () => {
    const t = now() - 3600;
    const el = rumElement({ pid: 'C9300-24T', serial: 'FOCREAD', reportId: 42, tag: TAG, measurements: [{ start: t, end: t + 60, count: 1 }] })
      .replace('WLC_9500C', 'WLC_9500C «Zürich» 東京').replace(/\n/g, '\r\n');
    const r = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(el));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const dev = (await h.api.get('/api/v1/devices?pid=C9300-24T').expect(200)).body.items[0];
    const one = (await h.api.get(`/api/v1/devices/${dev.id}/reports/${encodeURIComponent('C9300-24T:FOCREAD:42')}`).expect(200)).body;
    expect(one).toMatchObject({ source: 'rum', contentType: 'application/xml' });
    expect(one.original).toBe(el);

    // The same id as a device report (a row written beside it): the source must be named.
    h.services.db
      .prepare("INSERT INTO reports (device_id, source, report_id, received_at, content_hash, body, measurement_count, tags_json) VALUES (?, 'device', ?, 0, 'x', '{}', 1, '[]')")
      .run(dev.id, 'C9300-24T:FOCREAD:42');
    const both = await h.api.get(`/api/v1/devices/${dev.id}/reports/${encodeURIComponent('C9300-24T:FOCREAD:42')}`);
    expect([both.status, both.body.error.code]).toEqual([409, 'report_ambiguous']);
    expect((await h.api.get(`/api/v1/devices/${dev.id}/reports/${encodeURIComponent('C9300-24T:FOCREAD:42')}?source=rum`).expect(200)).body.original).toBe(el);
  });

  it('then an unknown device or report is a 404 naming it, and a bad cursor or source a 400', async () => {
    const d = await h.registered();
    const dev = await h.api.get('/api/v1/devices/dev_nope/reports');
    expect([dev.status, dev.body.error.message]).toEqual([404, 'device dev_nope does not exist']);
    const rep = await h.api.get(`/api/v1/devices/${d.deviceId}/reports/nope`);
    expect([rep.status, rep.body.error.code]).toEqual([404, 'report_not_found']);
    expect(rep.body.error.message).toContain(`outpost reports list ${d.deviceId}`);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}/reports?cursor=abc`)).status).toBe(400);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}/reports/x?source=file`)).status).toBe(400);
  });
});
