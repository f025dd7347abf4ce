import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const now = () => Math.floor(Date.now() / 1000);
interface Usage {
  deviceId: string;
  vaId: string;
  counted: boolean;
  items: { tag: string; count: number; periodEnd: string; reportId: string | null }[];
}
const usage = async (id: string) => (await h.api.get(`/api/v1/devices/${id}/usage`).expect(200)).body as Usage;

describe("when an operator reads a device's licenses in use", () => {
  it('then each tag shows its latest measurement and the report that carried it, counted in its VA while active', async () => {
    const d = await h.registered('FOC-USE-1');
    const t = now();
    expect((await d.sendReport(d.report(TAG, 4, t - 60, 'r-1'))).status).toBe(200);
    expect((await d.sendReport({ reportId: 'r-2', seq: 9, generatedAt: t, measurements: [{ tag: TAG, count: 2, start: t - 30, end: t }, { tag: TAG2, count: 7, start: t - 30, end: t }] })).status).toBe(200);
    const u = await usage(d.deviceId!);
    expect(u).toMatchObject({ deviceId: d.deviceId, vaId: h.defaultVa, counted: true });
    expect(u.items.map((i) => [i.tag, i.count, i.reportId])).toEqual([[TAG2, 7, 'r-2'], [TAG, 2, 'r-2']]);
    expect(u.items[0]!.periodEnd).toBe(new Date(t * 1000).toISOString());
    // The same numbers the VA counts.
    const va = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/compliance`).expect(200)).body as { tags: { tag: string; inUse: number }[] };
    for (const i of u.items) expect(va.tags.find((x) => x.tag === i.tag)!.inUse).toBe(i.count);

    // Each stored report names the tags it measured.
    const reports = (await h.api.get(`/api/v1/devices/${d.deviceId}/reports`).expect(200)).body.items as { reportId: string; tags: string[] }[];
    expect(reports.map((r) => [r.reportId, [...r.tags].sort()])).toEqual([['r-2', [TAG, TAG2].sort()], ['r-1', [TAG]]]);
  });

  it('then a deregistered device holds none, and a device not counted says so', async () => {
    const d = await h.registered('FOC-USE-2');
    expect((await d.sendReport(d.report(TAG, 3))).status).toBe(200);
    h.services.db.prepare("UPDATE devices SET status = 'stale' WHERE id = ?").run(d.deviceId);
    expect(await usage(d.deviceId!)).toMatchObject({ counted: false, items: [{ tag: TAG, count: 3 }] });
    h.services.db.prepare("UPDATE devices SET status = 'active' WHERE id = ?").run(d.deviceId);
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    expect(await usage(d.deviceId!)).toMatchObject({ counted: false, items: [] });
  });

  it('then an unknown device is a 404 naming it', async () => {
    const r = await h.api.get('/api/v1/devices/dev_nope/usage');
    expect([r.status, r.body.error.message]).toEqual([404, 'device dev_nope does not exist']);
  });
});
