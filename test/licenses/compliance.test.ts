import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import type { EntitlementLineInput } from '../../src/licenses/service.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const line = (h: Harness, o: Partial<EntitlementLineInput>) =>
  h.services.licenses.addLine(
    { vaId: h.defaultVa, tag: TAG, displayName: 'DNA Network Stack', kind: 'subscription', quantity: 10, startsAt: Date.now() - DAY, endsAt: Date.now() + 365 * DAY, ...o },
    'test',
  );

async function use(count: number, tag = TAG) {
  const d = await h.registered();
  await d.sendReport(d.report(tag, count));
  return d;
}

const statusOf = async (tag = TAG) => {
  const c = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/compliance`)).body;
  return c.tags.find((t: { tag: string }) => t.tag === tag);
};

describe('compliance per VA and tag', () => {
  it('when in use is within what is owned now, then in compliance', async () => {
    line(h, { quantity: 10 });
    await use(4);
    await use(6);
    expect(await statusOf()).toMatchObject({ owned: 10, inUse: 10, devices: 2, status: 'in_compliance', short: 0 });
  });

  it('when in use is above what is owned, then shortage with the shortfall, and an alert', async () => {
    line(h, { quantity: 5 });
    await use(8);
    expect(await statusOf()).toMatchObject({ owned: 5, inUse: 8, status: 'shortage', short: 3 });
    const alerts = (await h.api.get('/api/v1/alerts?kind=shortage')).body.items;
    expect(alerts).toHaveLength(1);
    expect(alerts[0].severity).toBe('critical');
  });

  it('when one of several lines has expired, then only the valid lines count', async () => {
    line(h, { quantity: 5 });
    line(h, { quantity: 5, startsAt: Date.now() - 400 * DAY, endsAt: Date.now() - DAY, kind: 'term' });
    await use(8);
    expect(await statusOf()).toMatchObject({ owned: 5, status: 'shortage', lines: { total: 2, validNow: 1 } });
  });

  it('when lines exist but none is valid now, then expired', async () => {
    line(h, { quantity: 50, startsAt: Date.now() - 400 * DAY, endsAt: Date.now() - DAY });
    await use(1);
    expect(await statusOf()).toMatchObject({ owned: 0, status: 'expired' });
  });

  it('when a line starts in the future, then it does not count yet', async () => {
    line(h, { quantity: 50, startsAt: Date.now() + DAY, endsAt: Date.now() + 30 * DAY });
    await use(1);
    expect(await statusOf()).toMatchObject({ owned: 0, status: 'expired' });
  });

  it('when a tag is in use and the VA never owned it, then not authorized', async () => {
    line(h, { tag: TAG2 });
    await use(1);
    expect(await statusOf()).toMatchObject({ status: 'not_authorized', owned: 0 });
    expect(await statusOf(TAG2)).toMatchObject({ status: 'in_compliance', inUse: 0 });
  });

  it('when a valid line is unlimited (enterprise agreement), then any use is in compliance', async () => {
    line(h, { kind: 'unlimited', quantity: 0, endsAt: null });
    await use(10_000);
    expect(await statusOf()).toMatchObject({ owned: null, status: 'in_compliance' });
  });

  it('when the shortage is resolved by a deregistration, then the alert clears', async () => {
    line(h, { quantity: 5 });
    await use(3);
    const d = await use(4);
    expect((await statusOf()).status).toBe('shortage');
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    expect((await statusOf()).status).toBe('in_compliance');
    expect((await h.api.get('/api/v1/alerts?kind=shortage')).body.items).toHaveLength(0);
    expect((await h.api.get('/api/v1/alerts?kind=shortage&state=cleared')).body.items).toHaveLength(1);
  });

  it('then a line that ends before it starts is refused', () => {
    expect(() => line(h, { startsAt: Date.now(), endsAt: Date.now() - 1 })).toThrow(/end after it starts/);
  });

  it('then the account-wide view lists every VA with an overall status', async () => {
    await h.api.post('/api/v1/virtual-accounts').send({ name: 'Quiet' }).expect(201);
    await use(1);
    const all = (await h.api.get('/api/v1/compliance')).body.items;
    expect(all.map((v: { vaName: string; status: string }) => [v.vaName, v.status])).toEqual([
      ['Default', 'out_of_compliance'],
      ['Quiet', 'in_compliance'],
    ]);
  });
});

describe('compliance verify', () => {
  it('when the counters match the per-device usage, then it reports no drift', async () => {
    await use(3);
    await use(2, TAG2);
    const r = (await h.api.post('/api/v1/compliance/verify').expect(200)).body;
    expect(r).toEqual({ checked: 2, drift: [] });
  });

  it('when a counter has drifted, then it reports the drift and rebuilds it', async () => {
    await use(3);
    h.services.db.prepare('UPDATE va_usage SET in_use = 99').run();
    const r = (await h.api.post('/api/v1/compliance/verify').expect(200)).body;
    expect(r.drift).toEqual([{ vaId: h.defaultVa, tag: TAG, stored: { inUse: 99, devices: 1 }, actual: { inUse: 3, devices: 1 } }]);
    expect((await statusOf()).inUse).toBe(3);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
  });
});

describe('entitlements are read-only over HTTP', () => {
  it('then lines seeded through the service are listed, and no route adds one', async () => {
    line(h, { quantity: 7 });
    const list = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/entitlements`)).body.items;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ tag: TAG, quantity: 7, kind: 'subscription' });
    expect((await h.api.post(`/api/v1/virtual-accounts/${h.defaultVa}/entitlements`).send({})).status).toBe(404);
  });
});
