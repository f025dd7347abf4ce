import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('the event log', () => {
  it('when state changes, then each change is an event that operators can filter', async () => {
    const va = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Ops' })).body.id;
    const d = await h.registered(undefined, va);
    await h.api.post(`/api/v1/devices/${d.deviceId}/move`).send({ vaId: h.defaultVa }).expect(200);
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    const types = (await h.api.get('/api/v1/events?limit=100')).body.items.map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['va.created', 'token.created', 'device.registered', 'device.moved', 'device.deregistered']));
    const devEvents = (await h.api.get('/api/v1/events?type=device.*')).body.items.map((e: { type: string }) => e.type);
    expect(devEvents).toEqual(['device.deregistered', 'device.moved', 'device.registered']);
    const bySubject = (await h.api.get(`/api/v1/events?subject=${d.deviceId}`)).body.items;
    expect(bySubject).toHaveLength(3);
    const page = (await h.api.get('/api/v1/events?limit=2')).body;
    const next = (await h.api.get(`/api/v1/events?limit=2&cursor=${page.nextCursor}`)).body;
    expect(next.items[0].id).toBeLessThan(page.items[1].id);
  });

  it('when an event is altered in the database, then the chain check finds it', async () => {
    await h.registered();
    expect((await h.api.get('/api/v1/events/verify')).body.intact).toBe(true);
    const victim = h.services.db.prepare("SELECT id FROM events WHERE type = 'token.created'").get() as { id: number };
    h.services.db.prepare("UPDATE events SET details = '{}' WHERE id = ?").run(victim.id);
    const r = (await h.api.get('/api/v1/events/verify')).body;
    expect(r).toMatchObject({ intact: false, firstBrokenId: victim.id });
  });

  it('when a flood of forged requests arrives, then each is counted but the log gets one event per interval', async () => {
    const d = await h.registered();
    const forger = h.device();
    forger.deviceId = d.deviceId;
    for (let i = 0; i < 50; i++) expect((await forger.sendReport(forger.report(TAG, 1))).status).toBe(401);
    h.services.refusals.flush();
    const events = (await h.api.get('/api/v1/events?type=security.refused')).body.items;
    expect(events.length).toBeLessThanOrEqual(2);
    expect(events.reduce((s: number, e: { details: { count: number } }) => s + e.details.count, 0)).toBe(50);
    expect((await h.api.get('/api/v1/security/refusals')).body.bad_signature).toBe(50);
  });
});
