import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { FIXTURE_TAG, startFakeCssm, type FakeCssm } from '../helpers/fake-cssm.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';

let h: Harness;
let cssm: FakeCssm;
let iosxe: FakeIosXe;
let labVa: string;
let strayVa: string;
let udi: string;

const events = (type: string) =>
  (h.services.db.prepare('SELECT actor, subject, va_id, details FROM events WHERE type = ? ORDER BY id').all(type) as { actor: string; subject: string; va_id: string; details: string }[])
    .map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }));
const rows = () => h.count('SELECT count(*) FROM cisco_reservations');
const reservationEvents = () => h.count("SELECT count(*) FROM events WHERE type LIKE 'cisco.reservation%'");

beforeAll(async () => {
  const ca = makeTestCa();
  cssm = await startFakeCssm({ ca, pollsBeforeComplete: 1 });
  iosxe = await startFakeIosXe({ count: 1, ca });
  h = await startHarness({
    config: {
      exchange: { mode: 'connected', upstream: { kind: 'cisco' } },
      cisco: {
        caFile: ca.caFile, timeoutSeconds: 2, retries: 0,
        cloud: {
          tokenUrl: cssm.tokenUrl, apiUrl: `${cssm.url}/smart-accounts-and-licensing`, clientId: cssm.clientId, domain: 'example.com',
          // Lab names a CSSM virtual account the smart account does not hold; Stray is not mapped at all.
          virtualAccounts: { Default: 'DEFAULT', Lab: 'Nowhere' }, caFile: ca.caFile, pollSeconds: 1,
        },
      },
    },
  });
  await h.api.post('/api/v1/cisco/cloud/credentials').send({ clientSecret: cssm.clientSecret }).expect(200);
  labVa = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id;
  strayVa = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Stray' }).expect(201)).body.id;
  const d = iosxe.device(0);
  udi = `${d.udi.pid}:${d.udi.serial}`;
  await h.api.post('/api/v1/cisco/devices').send({ name: 'sw-0', host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201);
  const polled = (await h.api.post('/api/v1/cisco/poll').send({}).expect(200)).body.items;
  expect(polled.every((p: { ok: boolean }) => p.ok)).toBe(true);
}, 20_000);

afterAll(async () => {
  await h?.close();
  await cssm?.stop();
  await iosxe?.stop();
});

describe("license reservations with Cisco's cloud", () => {
  it('when a device\'s reservation request code is given, then CSSM reserves the licenses in the mapped virtual account and the authorization code is kept for the operator', async () => {
    const r = (
      await h.api.post('/api/v1/cisco/reservations').send({ vaId: 'Default', requestCode: 'CB-ZC9300-24P:FOC2222X0AB-AkXb2', licenses: [{ tag: FIXTURE_TAG, quantity: 2 }] }).expect(201)
    ).body;
    const made = cssm.reservations().filter((x) => x.kind === 'reserve');
    expect(made).toEqual([expect.objectContaining({ va: 'DEFAULT', reservationCode: 'CB-ZC9300-24P:FOC2222X0AB-AkXb2', licenses: [{ tag: FIXTURE_TAG, quantity: 2 }] })]);
    expect(r).toMatchObject({ kind: 'reserve', status: 'complete', vaId: h.defaultVa, udi: null, authorizationCode: made[0]!.code });
    expect(r.delivery).toMatchObject({ device: null, deliveredAt: null });
    expect(r.delivery.manual).toContain('by hand');
    const listed = (await h.api.get('/api/v1/cisco/reservations').expect(200)).body.items;
    expect(listed.find((x: { id: string }) => x.id === r.id)).toEqual(r);
    const ev = events('cisco.reservation_made').filter((e) => e.details.reservation === r.id);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ actor: 'operator', va_id: h.defaultVa, details: { reservation: r.id, cssmVa: 'DEFAULT' } });
    expect(JSON.stringify(ev[0])).not.toContain(made[0]!.code);
  });

  it('when a polled IOS-XE device is named by its UDI, then CSSM authorizes it and the device receives the code through its import, tried again when it was down', async () => {
    await iosxe.setFaults(0, { down: true });
    const r = (await h.api.post('/api/v1/cisco/reservations').send({ vaId: h.defaultVa, udi, licenses: [{ tag: FIXTURE_TAG, quantity: 1 }] }).expect(201)).body;
    const asked = cssm.reservations().filter((x) => x.kind === 'authorize');
    expect(asked).toEqual([expect.objectContaining({ va: 'DEFAULT', udi: iosxe.device(0).udi, licenses: [{ tag: FIXTURE_TAG, quantity: 1 }] })]);
    expect(r).toMatchObject({ kind: 'reserve', status: 'complete', udi });
    expect(r.authorizationCode).toContain(asked[0]!.code);
    expect(r.delivery).toMatchObject({ deliveredAt: null, attempts: 1 });
    expect(r.delivery.error).toContain('nothing answers');
    expect(iosxe.device(0).imports).toEqual([]);

    await iosxe.setFaults(0, { down: false });
    expect(await h.services.cloud.reservations.deliverPending('test')).toEqual({ answered: 0, delivered: 1, failed: 0 });
    expect(iosxe.device(0).imports.map((i) => i.text)).toEqual([r.authorizationCode]);
    const now = (await h.api.get('/api/v1/cisco/reservations').expect(200)).body.items.find((x: { id: string }) => x.id === r.id);
    expect(now.delivery).toMatchObject({ attempts: 2, error: null });
    expect(now.delivery.deliveredAt).not.toBeNull();
    // Delivered once: the next run has nothing to give it.
    expect(await h.services.cloud.reservations.deliverPending('test')).toEqual({ answered: 0, delivered: 0, failed: 0 });
    expect(iosxe.device(0).imports).toHaveLength(1);
    expect(events('cisco.reservation_made').filter((e) => e.details.reservation === r.id)).toMatchObject([{ subject: udi, details: { licenses: [{ tag: FIXTURE_TAG, quantity: 1 }] } }]);
    expect(events('cisco.reservation_delivered').filter((e) => e.details.reservation === r.id)).toMatchObject([{ details: { device: 'sw-0' } }]);
    expect(JSON.stringify(events('cisco.reservation_made'))).not.toContain('smartLicenseAuthorization');
  });

  it('when a device returns its reservation with its return code, then CSSM takes the return and it is recorded as a return, nothing pushed', async () => {
    const imports = iosxe.device(0).imports.length;
    const r = (await h.api.post('/api/v1/cisco/reservations/return').send({ vaId: h.defaultVa, udi, returnCode: 'RC-AbC123dEf456' }).expect(201)).body;
    expect(cssm.reservations().filter((x) => x.kind === 'return')).toEqual([expect.objectContaining({ va: 'DEFAULT', udi: iosxe.device(0).udi, removeCode: 'RC-AbC123dEf456', licenses: [] })]);
    expect(r).toMatchObject({ kind: 'return', status: 'complete', udi, requestCode: 'RC-AbC123dEf456', delivery: null });
    expect(r.authorizationCode).toContain('RETURNED');
    expect(iosxe.device(0).imports).toHaveLength(imports);
    const ev = events('cisco.reservation_returned');
    expect(ev).toEqual([expect.objectContaining({ subject: udi, va_id: h.defaultVa, details: { reservation: r.id, cssmVa: 'DEFAULT' } })]);
  });

  it('when the VA is not mapped, the UDI is unknown, or CSSM refuses, then the error says what is wrong and nothing is recorded', async () => {
    const before = { rows: rows(), events: reservationEvents(), asked: cssm.reservations().length };
    const refuse = async (path: string, body: object, status: number) => (await h.api.post(`/api/v1/cisco/reservations${path}`).send(body).expect(status)).body.error;
    const lic = [{ tag: FIXTURE_TAG, quantity: 1 }];

    let e = await refuse('', { vaId: strayVa, requestCode: 'CODE-1', licenses: lic }, 409);
    expect(e).toMatchObject({ code: 'va_not_mapped' });
    expect(e.message).toContain('Stray');
    expect(e.message).toContain('cisco.cloud.virtualAccounts');
    e = await refuse('', { vaId: labVa, requestCode: 'CODE-1', licenses: lic }, 409);
    expect(e.message).toContain('Nowhere, which the smart account example.com does not hold');
    e = await refuse('', { vaId: h.defaultVa, udi: 'C9300-24P:NOSUCH1', licenses: lic }, 400);
    expect(e).toMatchObject({ code: 'unknown_udi' });
    expect(e.message).toContain('C9300-24P:NOSUCH1');
    e = await refuse('/return', { vaId: h.defaultVa, udi: 'C9300-24P:NOSUCH1', returnCode: 'RC-1' }, 400);
    expect(e).toMatchObject({ code: 'unknown_udi' });
    e = await refuse('', { vaId: labVa, udi, licenses: lic }, 409);
    expect(e).toMatchObject({ code: 'udi_in_other_va' });
    expect((await refuse('', { vaId: h.defaultVa, requestCode: 'CODE-1', udi, licenses: lic }, 400)).code).toBe('reservation_needs_one_of');
    expect((await refuse('', { vaId: h.defaultVa, requestCode: 'CODE-1', licenses: [] }, 400)).message).toContain('at least one license');
    expect((await refuse('', { vaId: h.defaultVa, requestCode: 'CODE-1', licenses: [...lic, ...lic] }, 400)).code).toBe('duplicate_license');
    expect((await refuse('', { vaId: h.defaultVa, udi: 'no-colon', licenses: lic }, 400)).message).toContain('PID:SERIAL');

    // CSSM itself refusing: its own words come back, whichever call it refused.
    cssm.fault({ path: 'reserve-licenses', status: 401, times: 2 });
    e = await refuse('', { vaId: h.defaultVa, requestCode: 'CODE-1', licenses: lic }, 502);
    expect(e).toMatchObject({ code: 'cssm_refused' });
    expect(e.message).toContain('The access token is no longer valid');
    cssm.fault({ path: 'authrequest', status: 401, times: 2 });
    e = await refuse('', { vaId: h.defaultVa, udi, licenses: lic }, 502);
    expect(e.message).toContain('The access token is no longer valid');

    expect({ rows: rows(), events: reservationEvents(), asked: cssm.reservations().length }).toEqual(before);
  });

  it('when polling CSSM fails after it took a request, then the request stays open and the next delivery run gets its code to the device', async () => {
    const imports = iosxe.device(0).imports.length;
    cssm.fault({ path: '/v2/accounts/poll', status: 401, times: 2 });
    const e = (await h.api.post('/api/v1/cisco/reservations').send({ vaId: h.defaultVa, udi, licenses: [{ tag: FIXTURE_TAG, quantity: 4 }] }).expect(502)).body.error;
    expect(e.message).toContain('The access token is no longer valid');
    expect(e.message).toContain('stays open');
    const open = (await h.api.get('/api/v1/cisco/reservations').expect(200)).body.items.find((x: { id: string }) => x.id === e.details.reservation);
    expect(open).toMatchObject({ status: 'polling', authorizationCode: null });
    expect(open.message).toContain('polled again');
    expect(events('cisco.reservation_made').filter((x) => x.details.reservation === open.id)).toEqual([]);

    // The fake answers OK_POLL once, then COMPLETE: two runs, the second delivers.
    expect(await h.services.cloud.reservations.deliverPending('schedule')).toEqual({ answered: 0, delivered: 0, failed: 0 });
    expect(await h.services.cloud.reservations.deliverPending('schedule')).toEqual({ answered: 1, delivered: 1, failed: 0 });
    const done = (await h.api.get('/api/v1/cisco/reservations').expect(200)).body.items.find((x: { id: string }) => x.id === open.id);
    expect(done).toMatchObject({ status: 'complete', message: null });
    expect(done.authorizationCode).toContain(cssm.reservations().at(-1)!.code);
    expect(iosxe.device(0).imports.slice(imports).map((i) => i.text)).toEqual([done.authorizationCode]);
    expect(events('cisco.reservation_made').filter((x) => x.details.reservation === open.id)).toMatchObject([{ actor: 'schedule', subject: udi }]);
  });
});
