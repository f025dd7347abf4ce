import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_BASE, FIXTURE_TAG, startFakeCssm, type FakeCssm } from '../helpers/fake-cssm.js';
import { startFakeCssmProcess, type FakeCssmProcess } from '../helpers/fake-cssm-process.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const SAMPLE = readFileSync(new URL('../../../shared/fixtures/rum/c9800-cl-example.xml', import.meta.url), 'utf8');
/** The fixture's RUM report object, as all-reports would give it (a header added). */
const fixtureReport = (): Record<string, unknown> => {
  const inner = /<!\[CDATA\[([\s\S]*?)\]\]>/.exec(SAMPLE)![1]!;
  return { header: { type: 'rum', report_id: 1671840750, state: 'CLOSED' }, ...(JSON.parse(inner) as Record<string, unknown>) };
};
const UDI = { udi_pid: 'C9800-CL-K9', udi_serial_number: '9NTUEA8FIIH' };

/** A report of the fixture's device with another report id. */
function reportWithId(id: number, udi = UDI): Record<string, unknown> {
  const r = fixtureReport();
  const p = JSON.parse(r.payload as string) as { asset_identification: { report_id: number; instance: { sudi: unknown } } };
  p.asset_identification.report_id = id;
  p.asset_identification.instance.sudi = udi;
  return { ...r, payload: JSON.stringify(p), header: { type: 'rum', report_id: id, state: 'CLOSED' } };
}

let ca: TestCa;
let agent: Agent;
beforeAll(() => {
  ca = makeTestCa();
  agent = new Agent({ connect: { ca: readFileSync(ca.caFile) } });
});
afterAll(() => agent.close());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const r = await request(url, { dispatcher: agent, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as Record<string, unknown> };
}

const form = (o: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o).toString() });

type Fake = FakeCssm | FakeCssmProcess;

async function tokenOf(f: Fake): Promise<string> {
  const a = await call(f.tokenUrl, form({ client_id: f.clientId, client_secret: f.clientSecret, grant_type: 'client_credentials' }));
  expect(a.status).toBe(200);
  return a.body.access_token as string;
}

const nonce = () => Math.random().toString(36).slice(2, 10).padEnd(8, '0') + 'ABCDEFGH';
const api = (f: Fake, p: string) => `${f.url}/smart-accounts-and-licensing${p}`;

function deviceHeaders(f: Fake, token: string, over: Record<string, string | undefined> = {}): Record<string, string> {
  const h: Record<string, string | undefined> = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    'x-csw-smart-account-id': f.accountId,
    'x-csw-virtual-account-id': f.virtualAccounts[0]!.id,
    'x-csw-requesting-system': JSON.stringify(UDI),
    ...over,
  };
  return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

const upload = (f: Fake, token: string, reports: unknown[], over: Record<string, string | undefined> = {}) =>
  call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: deviceHeaders(f, token, over), body: JSON.stringify({ data: { timestamp: Date.now(), nonce: nonce(), reports } }) });

const pollOnce = (f: Fake, token: string, pollId: string, action = 'acknowledgements') =>
  call(api(f, '/v2/accounts/poll'), { method: 'POST', headers: deviceHeaders(f, token), body: JSON.stringify({ data: { timestamp: Date.now(), nonce: nonce(), poll_id: pollId, action } }) });

const licensesPage = (f: Fake, token: string, body: unknown, domain = f.domain) =>
  call(api(f, `/v1/accounts/${domain}/licenses`), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('fake CSSM, in process', () => {
  let f: FakeCssm;
  beforeAll(async () => {
    f = await startFakeCssm({ ca, pollsBeforeComplete: 2, pageLimitMax: 3 });
  });
  afterAll(() => f.stop());

  it('issues a Bearer token for the client credentials, form-encoded, and refuses anything else with an OAuth error', async () => {
    const ok = await call(f.tokenUrl, form({ client_id: f.clientId, client_secret: f.clientSecret, grant_type: 'client_credentials' }));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(typeof ok.body.access_token).toBe('string');

    const wrong = await call(f.tokenUrl, form({ client_id: f.clientId, client_secret: 'nope', grant_type: 'client_credentials' }));
    expect([wrong.status, wrong.body.error]).toEqual([401, 'invalid_client']);
    const grant = await call(f.tokenUrl, form({ client_id: f.clientId, client_secret: f.clientSecret, grant_type: 'password' }));
    expect([grant.status, grant.body.error]).toEqual([400, 'unsupported_grant_type']);
    const asJson = await call(f.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: f.clientId, client_secret: f.clientSecret, grant_type: 'client_credentials' }) });
    expect([asJson.status, asJson.body.error]).toEqual([400, 'invalid_request']);
    expect(f.clientSecret).toMatch(/^cssm-secret-/);
  });

  it('answers 401 without a token, with an unknown one, and once tokens expire', async () => {
    const search = api(f, '/v2/accounts/search');
    expect((await call(search)).status).toBe(401);
    expect((await call(search, { headers: { authorization: 'Bearer made-up' } })).status).toBe(401);
    const t = await tokenOf(f);
    expect((await call(search, { headers: { authorization: `Bearer ${t}` } })).status).toBe(200);
    f.expireTokens();
    const expired = await call(search, { headers: { authorization: `Bearer ${t}` } });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ error: 'invalid_token', error_description: expect.stringMatching(/expired/) });
    expect((await call(search, { headers: { authorization: `Bearer ${await tokenOf(f)}` } })).status).toBe(200);
  });

  it('expires a token after its lifetime', async () => {
    const short = await startFakeCssm({ ca, tokenTtlSeconds: 0 });
    try {
      const t = await tokenOf(short);
      expect((await call(api(short, '/v2/accounts/search'), { headers: { authorization: `Bearer ${t}` } })).status).toBe(401);
    } finally {
      await short.stop();
    }
  });

  it('lists the smart account with its virtual accounts', async () => {
    const a = await call(api(f, '/v2/accounts/search'), { headers: { authorization: `Bearer ${await tokenOf(f)}` } });
    expect(a.body).toMatchObject({
      status: 'COMPLETE',
      accounts: [{ domain: 'example.com', account_id: '1001', virtual_accounts: [{ name: 'DEFAULT', virtual_account_id: '2001' }, { name: 'Campus', virtual_account_id: '2002' }] }],
    });
  });

  it('takes a device report, answers a poll_id, polls OK_POLL twice then COMPLETE with the ACK in base64', async () => {
    const t = await tokenOf(f);
    const up = await upload(f, t, [reportWithId(5001), reportWithId(5002)]);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ poll_id: expect.any(String) });
    expect(up.body.status).not.toBe('FAILED');
    const pollId = up.body.poll_id as string;
    expect(f.uploads().at(-1)).toMatchObject({ udi: { pid: 'C9800-CL-K9', serial: '9NTUEA8FIIH' }, va: 'DEFAULT', reportIds: ['5001', '5002'], pollId });

    expect((await pollOnce(f, t, pollId)).body).toMatchObject({ status: 'OK_POLL', message: '' });
    expect((await pollOnce(f, t, pollId)).body).toMatchObject({ status: 'OK_POLL', message: '' });
    const done = await pollOnce(f, t, pollId);
    expect(done.body.status).toBe('COMPLETE');
    const ack = Buffer.from(done.body.smart_license as string, 'base64').toString('utf8');
    const data = /^<smartLicense><smartLicenseRumAck><data>(.*)<\/data><\/smartLicenseRumAck><\/smartLicense>$/.exec(ack)![1]!;
    expect(JSON.parse(data)).toMatchObject({ udi: UDI, report_ids: ['5001', '5002'] });

    const unknown = await pollOnce(f, t, '999');
    expect(unknown.body).toMatchObject({ status: 'OK_POLL', message_code: 'POLL_ID_NOT_FOUND' });
    expect(unknown.body.message).not.toBe('');
    expect((await pollOnce(f, t, pollId, 'authorizations')).status).toBe(400);
  });

  it('reads the wrapped form of the sample builders too', async () => {
    const t = await tokenOf(f);
    const wrapped = { sudi: UDI, hostname: 'wlc-1', usage: [{ payload: reportWithId(5101).payload, signature: reportWithId(5101).signature, is_ha: null }] };
    const up = await upload(f, t, [wrapped]);
    expect(up.body.poll_id).toEqual(expect.any(String));
    expect(f.uploads().at(-1)!.reportIds).toEqual(['5101']);
  });

  it('refuses a report already uploaded with FAILED, counting it once', async () => {
    const t = await tokenOf(f);
    expect((await upload(f, t, [reportWithId(5201)])).body.poll_id).toBeDefined();
    const before = f.uploads().length;
    const again = await upload(f, t, [reportWithId(5202), reportWithId(5201)]);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'FAILED', message: expect.stringMatching(/already uploaded: 5201$/) });
    expect(again.body.poll_id).toBeUndefined();
    expect(f.uploads().length).toBe(before);
    expect(f.duplicates()).toEqual([]);
    expect(f.refusedDuplicates()).toEqual(['C9800-CL-K9/9NTUEA8FIIH#5201']);
    expect(f.requests().filter((r) => r.path.endsWith('/reportusage')).length).toBeGreaterThan(1);
    // The new report of the refused request was not taken: it can still be sent.
    expect((await upload(f, t, [reportWithId(5202)])).body.poll_id).toBeDefined();
  });

  it('counts a report sent again before its poll completed when the check is after-complete', async () => {
    const lax = await startFakeCssm({ ca, duplicateCheck: 'after-complete', pollsBeforeComplete: 0 });
    try {
      const t = await tokenOf(lax);
      const first = await upload(lax, t, [reportWithId(1)]);
      await upload(lax, t, [reportWithId(1)]);
      expect(lax.duplicates()).toEqual(['C9800-CL-K9/9NTUEA8FIIH#1']);
      expect((await pollOnce(lax, t, first.body.poll_id as string)).body.status).toBe('COMPLETE');
      expect((await upload(lax, t, [reportWithId(1)])).body.status).toBe('FAILED');
    } finally {
      await lax.stop();
    }
  });

  it('is strict on the device headers and the body', async () => {
    const t = await tokenOf(f);
    const r = [reportWithId(5301)];
    const expect400 = async (a: Promise<Answer>, msg: RegExp) => {
      const got = await a;
      expect(got.status).toBe(400);
      expect(got.body).toMatchObject({ status: 'FAILED', message: expect.stringMatching(msg) });
    };
    await expect400(upload(f, t, r, { 'x-csw-requesting-system': undefined }), /X-CSW-REQUESTING-SYSTEM is required/);
    await expect400(upload(f, t, r, { 'x-csw-requesting-system': '{"udi_pid":"C9800-CL-K9"}' }), /udi_serial_number/);
    await expect400(upload(f, t, r, { 'x-csw-smart-account-id': '9999' }), /SMART-ACCOUNT-ID 9999/);
    await expect400(upload(f, t, r, { 'x-csw-virtual-account-id': undefined }), /VIRTUAL-ACCOUNT-ID is required/);
    await expect400(upload(f, t, r, { 'x-csw-virtual-account-id': '7777' }), /7777 is not a virtual account/);
    await expect400(upload(f, t, r, { 'x-csw-requesting-system': JSON.stringify({ udi_pid: 'C9800-CL-K9', udi_serial_number: 'OTHER' }) }), /not to the requesting system/);
    await expect400(upload(f, t, []), /non-empty/);
    await expect400(upload(f, t, [{ ...reportWithId(5302), payload: '{not json' }]), /payload is not JSON/);
    await expect400(upload(f, t, [{ payload: reportWithId(5303).payload }]), /signature is required/);
    await expect400(upload(f, t, [reportWithId(5304), reportWithId(5304)]), /appears twice/);
    const h = deviceHeaders(f, t);
    await expect400(call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: h, body: '{"data": ' }), /not JSON/);
    await expect400(call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: h, body: JSON.stringify({ data: { timestamp: 17, nonce: nonce(), reports: r } }) }), /milliseconds/);
    await expect400(call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: h, body: JSON.stringify({ data: { timestamp: Date.now(), nonce: 'short', reports: r } }) }), /nonce/);
    await expect400(call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: { ...h, 'content-type': 'text/plain' }, body: '{}' }), /application\/json/);
    // Unknown fields are tolerated, as the sample builders send several.
    const extra = await call(api(f, '/v2/devices/reportusage'), { method: 'POST', headers: h, body: JSON.stringify({ data: { timestamp: Date.now(), nonce: nonce(), reports: r, sudi: UDI, product_instance_identifier: null }, locale: null }) });
    expect(extra.body.poll_id).toBeDefined();
    expect(f.uploads().filter((u) => u.reportIds.includes('5301'))).toHaveLength(1);
  });

  it('pages the license positions, refusing a limit over the maximum', async () => {
    const t = await tokenOf(f);
    const p1 = await licensesPage(f, t, { virtualAccounts: ['DEFAULT', 'Campus'], limit: 3, offset: 0 });
    expect(p1.status).toBe(200);
    expect(p1.body.totalRecords).toBe(4);
    const l1 = p1.body.licenses as Record<string, unknown>[];
    expect(l1).toHaveLength(3);
    expect(l1[0]).toMatchObject({ license: 'DNA Network Stack', tag: FIXTURE_TAG, quantity: 100, inUse: 40, available: 60, virtualAccount: 'DEFAULT', licenseDetails: [{ licenseType: 'TERM', quantity: 100 }] });
    expect(l1[1]).not.toHaveProperty('tag');
    const p2 = await licensesPage(f, t, { virtualAccounts: ['DEFAULT', 'Campus'], limit: 3, offset: 3 });
    expect((p2.body.licenses as unknown[]).length).toBe(1);
    const all = await licensesPage(f, t, { virtualAccounts: [], limit: 3, offset: 0 });
    expect(all.body.totalRecords).toBe(4);
    const campus = await licensesPage(f, t, { virtualAccounts: ['Campus'], limit: 3, offset: 0 });
    expect((campus.body.licenses as { virtualAccount: string }[]).map((l) => l.virtualAccount)).toEqual(['Campus', 'Campus']);

    const big = await licensesPage(f, t, { virtualAccounts: ['DEFAULT'], limit: 4, offset: 0 });
    expect(big.status).toBe(400);
    expect(big.body).toMatchObject({ status: 'ERROR', statusMessage: expect.stringMatching(/limit 4 is over the maximum of 3/) });
    expect((await licensesPage(f, t, { virtualAccounts: ['Nope'], limit: 3, offset: 0 })).status).toBe(400);
    expect((await licensesPage(f, t, { virtualAccounts: ['DEFAULT'], offset: 0 })).status).toBe(400);
    expect((await licensesPage(f, t, { virtualAccounts: ['DEFAULT'], limit: 3, offset: 0 }, 'other.example')).status).toBe(404);

    f.setLicenses([{ va: 'Campus', name: 'X', quantity: 1, inUse: 2 }]);
    const changed = await licensesPage(f, t, { virtualAccounts: [], limit: 3, offset: 0 });
    expect(changed.body).toMatchObject({ totalRecords: 1, licenses: [{ license: 'X', available: -1 }] });
  });

  it('turns a reservation request code into an authorization code, and records it', async () => {
    const t = await tokenOf(f);
    const url = api(f, `/v1/accounts/${f.domain}/virtual-accounts/Campus/reserve-licenses`);
    const h = { authorization: `Bearer ${t}`, 'content-type': 'application/json' };
    const body = { reservationRequests: [{ reservationCode: 'CB-ZC9800-CL-K9:9NTUEA8FIIH-AxyzQ-3B', reservationType: 'SPECIFIC', licenses: [{ entitlementTag: FIXTURE_TAG, quantity: 2, precedence: 'LONGEST_TERM_FIRST' }] }] };
    const ok = await call(url, { method: 'POST', headers: h, body: JSON.stringify(body) });
    expect(ok.status).toBe(200);
    const code = (ok.body.authorizationCodes as { authorizationCode: string }[])[0]!.authorizationCode;
    expect(code).toContain(FIXTURE_TAG);
    expect(f.reservations().at(-1)).toMatchObject({ kind: 'reserve', va: 'Campus', reservationCode: body.reservationRequests[0]!.reservationCode, code, licenses: [{ tag: FIXTURE_TAG, quantity: 2 }] });
    expect((await call(url, { method: 'POST', headers: h, body: JSON.stringify({ reservationRequests: [{ reservationType: 'SPECIFIC', licenses: [] }] }) })).status).toBe(400);
    expect((await call(api(f, `/v1/accounts/${f.domain}/virtual-accounts/Nope/reserve-licenses`), { method: 'POST', headers: h, body: JSON.stringify(body) })).status).toBe(404);
  });

  it('requests an authorization per UDI and returns it with a remove_code, each through a poll', async () => {
    const t = await tokenOf(f);
    const send = (lic: Record<string, unknown>) =>
      call(api(f, '/v2/devices/authrequest'), { method: 'POST', headers: deviceHeaders(f, t), body: JSON.stringify({ data: { timestamp: Date.now(), nonce: nonce(), licenses: [{ sudi: UDI, hostname: 'wlc-1', ...lic }] } }) });
    const req = await send({ keys: [{ entitlement: FIXTURE_TAG, count: '1' }] });
    const pollId = req.body.poll_id as string;
    expect(pollId).toEqual(expect.any(String));
    for (let i = 0; i < 2; i++) expect((await pollOnce(f, t, pollId, 'authorizations')).body.status).toBe('OK_POLL');
    const done = await pollOnce(f, t, pollId, 'authorizations');
    expect(done.body.status).toBe('COMPLETE');
    expect(Buffer.from(done.body.smart_license as string, 'base64').toString()).toContain(FIXTURE_TAG);

    const ret = await send({ keys: [], remove_code: 'UDI_PID:C9800-CL-K9,UDI_SN:9NTUEA8FIIH#Rcode' });
    expect(ret.body.poll_id).toEqual(expect.any(String));
    expect(f.reservations().map((r) => r.kind).slice(-2)).toEqual(['authorize', 'return']);
    expect((await send({ keys: [] })).status).toBe(400);
    expect((await send({ keys: [{ entitlement: FIXTURE_TAG, count: 0 }] })).status).toBe(400);
  });

  it('answers injected faults: 429 with Retry-After, then 500, then normally', async () => {
    const t = await tokenOf(f);
    const url = api(f, '/v2/accounts/search');
    f.fault({ path: '/v2/accounts/search', status: 429, times: 1, retryAfterSeconds: 7 });
    f.fault({ path: /accounts\/search$/, status: 500, times: 2 });
    const limited = await call(url, { headers: { authorization: `Bearer ${t}` } });
    expect([limited.status, limited.headers['retry-after']]).toEqual([429, '7']);
    expect((await call(url, { headers: { authorization: `Bearer ${t}` } })).status).toBe(500);
    expect((await call(url, { headers: { authorization: `Bearer ${t}` } })).status).toBe(500);
    expect((await call(url, { headers: { authorization: `Bearer ${t}` } })).status).toBe(200);
    f.fault({ path: API_BASE, status: 401, times: 1 });
    expect((await call(url, { headers: { authorization: `Bearer ${t}` } })).status).toBe(401);
    expect(f.requests().filter((r) => r.path.endsWith('/accounts/search')).slice(-5).map((r) => r.status)).toEqual([429, 500, 500, 200, 401]);
  });
});

describe('fake CSSM, as a separate HTTPS process', () => {
  let p: FakeCssmProcess;
  beforeAll(async () => {
    p = await startFakeCssmProcess({ ca, pollsBeforeComplete: 1, clientSecret: 'cssm-secret-process' });
  });
  afterAll(() => p.stop());

  it('runs token, upload, poll and positions over the wire, and is driven through its control endpoint', async () => {
    expect(p.proc.pid).not.toBe(process.pid);
    const t = await tokenOf(p);
    const up = await upload(p, t, [reportWithId(7001)]);
    const pollId = up.body.poll_id as string;
    expect((await pollOnce(p, t, pollId)).body.status).toBe('OK_POLL');
    expect((await pollOnce(p, t, pollId)).body.status).toBe('COMPLETE');
    expect((await upload(p, t, [reportWithId(7001)])).body.status).toBe('FAILED');
    expect(await p.uploads()).toMatchObject([{ udi: { pid: 'C9800-CL-K9', serial: '9NTUEA8FIIH' }, va: 'DEFAULT', reportIds: ['7001'], pollId }]);
    expect(await p.duplicates()).toEqual([]);
    expect(await p.refusedDuplicates()).toEqual(['C9800-CL-K9/9NTUEA8FIIH#7001']);

    await p.setLicenses([{ va: 'DEFAULT', name: 'Only', tag: FIXTURE_TAG, quantity: 3, inUse: 1 }]);
    expect((await licensesPage(p, t, { virtualAccounts: ['DEFAULT'], limit: 50, offset: 0 })).body).toMatchObject({ totalRecords: 1, licenses: [{ license: 'Only', available: 2 }] });

    await p.fault({ path: /licenses$/, status: 429, times: 1, retryAfterSeconds: 2 });
    const limited = await licensesPage(p, t, { virtualAccounts: ['DEFAULT'], limit: 50, offset: 0 });
    expect([limited.status, limited.headers['retry-after']]).toEqual([429, '2']);
    await p.fault({ path: '/v2/accounts/search', status: 500, times: 1 });
    expect((await call(api(p, '/v2/accounts/search'), { headers: { authorization: `Bearer ${t}` } })).status).toBe(500);
    await p.expireTokens();
    expect((await call(api(p, '/v2/accounts/search'), { headers: { authorization: `Bearer ${t}` } })).status).toBe(401);
    expect((await p.requests()).map((r) => r.status).slice(-3)).toEqual([429, 500, 401]);
  });
});
