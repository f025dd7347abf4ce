import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';

let h: Harness;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock(Date.now());
  h = await startHarness({ clock });
});
afterEach(() => h.close());

const shortage = async () => (await h.api.get('/api/v1/alerts?kind=shortage').expect(200)).body.items[0];
const ack = (id: number | string, reason: unknown) => h.api.post(`/api/v1/alerts/${id}/acknowledge`).send({ reason });
const events = async (type: string) => (await h.api.get(`/api/v1/events?type=${type}`).expect(200)).body.items;
/** Sends one report after another, a second apart, so each is the device's latest. */
const report = async (d: Awaited<ReturnType<Harness['registered']>>, count: number) => {
  clock.advance(1000);
  expect((await d.sendReport(d.report(TAG, count))).status).toBe(200);
};

describe('when an operator acknowledges an open shortage', () => {
  it('then the alert shows who and why, the event log keeps it, and it stays acknowledged while it does not grow', async () => {
    const d = await h.registered();
    await report(d, 2);
    const a = await shortage();
    expect(a.acknowledged).toBeNull();
    const r = await ack(a.id, 'buying 5 more, PO 4711');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.acknowledged).toMatchObject({ by: 'operator', reason: 'buying 5 more, PO 4711' });
    expect((await events('alert.acknowledged'))[0]).toMatchObject({
      actor: 'operator', subject: String(a.id), vaId: h.defaultVa, details: { kind: 'shortage', reason: 'buying 5 more, PO 4711' },
    });
    await report(d, 2);
    await report(d, 1); // smaller: still acknowledged
    await h.api.post('/api/v1/alerts/evaluate').expect(200);
    expect((await shortage()).acknowledged).toMatchObject({ reason: 'buying 5 more, PO 4711' });
    // Hidden by acknowledged=false, as the CLI lists by default.
    expect((await h.api.get('/api/v1/alerts?kind=shortage&acknowledged=false').expect(200)).body.items).toEqual([]);
  });

  it('then a larger shortage unacknowledges it, and an event says why', async () => {
    const d = await h.registered();
    await report(d, 2);
    const a = await shortage();
    await ack(a.id, 'known').expect(200);
    await report(d, 3);
    const now = await shortage();
    expect(now.id).toBe(a.id);
    expect(now.acknowledged).toBeNull();
    expect((await events('alert.unacknowledged'))[0]).toMatchObject({
      actor: 'system', subject: String(a.id), details: { reason: 'shortage_grew', from: 2, to: 3 },
    });
  });

  it('then when it clears the acknowledgement ends with it (an event says so), and the next shortage is a new, unacknowledged alert', async () => {
    const d = await h.registered();
    await report(d, 2);
    const a = await shortage();
    await ack(a.id, 'known').expect(200);
    await h.api.post(`/api/v1/devices/${d.deviceId}/deregister`).expect(200);
    expect(await shortage()).toBeUndefined();
    expect((await events('alert.unacknowledged'))[0]).toMatchObject({ subject: String(a.id), details: { reason: 'cleared' } });
    const d2 = await h.registered('FOCSECOND');
    await report(d2, 1);
    const next = await shortage();
    expect(next.id).not.toBe(a.id);
    expect(next.acknowledged).toBeNull();
    // A cleared alert cannot be acknowledged.
    const late = await ack(a.id, 'too late');
    expect([late.status, late.body.error.code]).toEqual([409, 'alert_cleared']);
  });
});

describe('when an acknowledged alert rises in severity', () => {
  it('then it is unacknowledged again, and an event names both severities', async () => {
    h.services.alerts.raise('token_expiring', { subject: 'tok_x', severity: 'info', message: 'expires soon' });
    const a = (await h.api.get('/api/v1/alerts?kind=token_expiring').expect(200)).body.items[0];
    await ack(a.id, 'renewing next week').expect(200);
    h.services.alerts.raise('token_expiring', { subject: 'tok_x', severity: 'info', message: 'expires soon' });
    expect((await h.api.get(`/api/v1/alerts?kind=token_expiring`).expect(200)).body.items[0].acknowledged).not.toBeNull();
    h.services.alerts.raise('token_expiring', { subject: 'tok_x', severity: 'warning', message: 'expires tomorrow' });
    expect((await h.api.get(`/api/v1/alerts?kind=token_expiring`).expect(200)).body.items[0].acknowledged).toBeNull();
    expect((await events('alert.unacknowledged'))[0]).toMatchObject({ details: { reason: 'severity_rose', from: 'info', to: 'warning' } });
  });
});

describe('when an acknowledgement is malformed', () => {
  it('then it is a 4xx naming what is wrong, and nothing changes', async () => {
    const d = await h.registered();
    await report(d, 2);
    const a = await shortage();
    for (const [id, reason, status, code] of [
      [a.id, '', 400, 'invalid_body'], [a.id, '   ', 400, 'invalid_body'], [a.id, 7, 400, 'invalid_body'],
      ['abc', 'x', 400, 'invalid_path'], [a.id + 1000, 'x', 404, 'not_found'],
    ] as const) {
      const r = await ack(id, reason);
      expect([r.status, r.body.error?.code], `${id} ${JSON.stringify(reason)}`).toEqual([status, code]);
    }
    expect((await shortage()).acknowledged).toBeNull();
    expect(await events('alert.acknowledged')).toEqual([]);
  });
});
