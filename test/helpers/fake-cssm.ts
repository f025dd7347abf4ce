import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { makeTestCa, type TestCa } from './test-ca.js';

/*
 * A test double of Cisco Smart Software Manager's public REST API (Smart Accounts and Licensing,
 * with OAuth client credentials), as far as its shapes are published. Strict where the real one
 * would be: a request the real API would refuse is refused here with a message saying why.
 *
 * Sources (public shapes only; nothing of theirs is copied):
 *  [SAMPLE-SLR] Cisco's sample "Smart Licensing - Offline License Reservation" (Cisco Sample Code
 *        License 1.1, 2022): token by form-encoded client_id/client_secret/grant_type=client_credentials;
 *        GET v2/accounts/search read as `accounts[].domain`, `account_id`, `virtual_accounts[].name`,
 *        `virtual_account_id`; device calls carry X-CSW-SMART-ACCOUNT-ID, X-CSW-VIRTUAL-ACCOUNT-ID and
 *        X-CSW-REQUESTING-SYSTEM (JSON udi_pid/udi_serial_number); POST v2/devices/reportusage body
 *        {data:{timestamp (ms), nonce (16 letters/digits), reports}}, answer read as `status` ("FAILED"
 *        with `message`, "most commonly ... a duplicate report") else `poll_id`; POST v2/accounts/poll
 *        {data:{timestamp, nonce, poll_id, action}}: "OK_POLL" with message "" while working, a
 *        non-empty message and `message_code` when it failed, "COMPLETE" when done; POST
 *        v2/devices/authrequest {data:{timestamp, nonce, licenses:[{sudi, hostname, keys:[{entitlement,
 *        count}]}]}}, with `remove_code` and empty keys for a return; answer read as `poll_id`.
 *  [SAMPLE-RUM] Cisco's sample payload builders (rum/slac reports): the reportusage answer carries
 *        `timestamp`, `nonce`, `poll_id`; poll `action` "acknowledgements" (RUM) or "authorizations"
 *        (SLAC), with `type` "authorizations"; a report wrapped as {sudi, hostname, ..., usage:[{payload,
 *        signature, ...}]}; X-CSW-REQUESTING-SYSTEM may add display_name/host_identifier.
 *  [SAMPLE-SLP] Cisco's SLP sample tool (2021): accounts/search answer has `status` "COMPLETE"; each
 *        device's ACK is `<smartLicense><smartLicenseRumAck><data>…` (optionally smartLicensePolicy).
 *  [SAMPLE-PLR] public scripts against swapi.cisco.com: POST v1/accounts/{domain}/virtual-accounts/{va
 *        name}/reserve-licenses {reservationRequests:[{reservationCode, reservationType "SPECIFIC",
 *        licenses:[{entitlementTag, quantity, precedence}]}]}, answer read as
 *        `authorizationCodes[0].authorizationCode`; POST v1/accounts/{domain}/licenses
 *        {virtualAccounts:[names], limit: 50, offset: 0} (also sent with virtualAccounts [] for all),
 *        answer read as `licenses[].license`, `available`, `virtualAccount`.
 *  [MODEL] a public C# client's models of the same API: the licenses answer {licenses, totalRecords},
 *        each license {license, quantity, inUse, available, reserved, pendingQuantity, status,
 *        billingType, ahaApps, isPortable, licenseSubstitutions, licenseDetails, virtualAccount};
 *        Cisco's MSX SDK LicenseDetails: {licenseType TERM|DEMO|PERPETUAL, quantity, startDate and
 *        endDate yyyy-mm-dd, subscriptionId, status}.
 *  [TRANSFER] Cisco's Smart Accounts and Licensing API reference: POST v1/accounts/{domain}/virtual-accounts/
 *        {va name}/licenses/transfer {licenses:[{license, licenseType, quantity, targetVirtualAccount}]}
 *        moves licenses from that virtual account to another of the same smart account.
 *  [OAUTH] Cisco's API docs (id.cisco.com/oauth2/default/v1/token): client credentials, form-encoded,
 *        answer {access_token, token_type, expires_in}; RFC 6749 §5.2 error bodies.
 *  [FIXTURE] shared fixtures/rum: a RUM report's `payload` is a JSON string holding
 *        asset_identification.report_id and instance.sudi (udi_pid, udi_serial_number).
 *
 * GUESSED (not public; a client must not depend on more than the sources above):
 *  - HTTP status codes of refusals (400/404/415 here) and the bodies of errors: v2 calls answer
 *    {status:"FAILED", message, message_code}; v1 calls {status:"ERROR", statusMessage}; 401 is
 *    {error:"invalid_token", error_description}. A client should read `message`, `statusMessage`
 *    or `error_description`, whichever is there.
 *  - The HTTP status of a duplicate upload (200 here, with status "FAILED"), its message text
 *    ("Usage report(s) already uploaded: <ids>"), and that the whole request is refused when any
 *    report in it was already uploaded (nothing in it is recorded).
 *  - The reportusage success `status` ("OK_POLL"); the ACK's <data> content (JSON naming the UDI
 *    and report ids here; opaque to a client); the authorization code's text; `tag` on a license
 *    (named after the `tag` of Cisco's vManage license sync; no public CSSM answer shows one, so
 *    some positions leave it out); license `status` values; accounts search fields beyond
 *    domain/account_id/virtual_accounts; that unknown poll ids answer OK_POLL with a message_code.
 *  - The transfer call's answer ({status:"SUCCESS"} here; refusals as the other v1 calls), that
 *    a request is applied whole or not at all, that a licenses entry may carry at most
 *    `transferQuantityMax` (default 100) licenses, and the text of an "insufficient" refusal.
 *  - That Cisco may accept a transfer call and show it in the licenses answer only later
    (transferApplyAfterReads), that the source's available quantity is checked at the call
    against what the transfers accepted and not yet shown have already taken from it, and that
    an accepted transfer is applied later whole (never in part, never refused after the 200).
  - That every report in one upload must be the requesting system's own, and that the JSON
 *    endpoints insist on an application/json content type.
 */

export const API_BASE = '/services/api/smart-accounts-and-licensing';
export const TOKEN_PATH = '/oauth2/token';
const MAX_BODY = 8 * 1024 * 1024;

export interface FakeLicense {
  /** The virtual account's name. */
  va: string;
  /** The license's display name, as CSSM shows it (`license`). */
  name: string;
  /** An entitlement tag; left out of the answer when absent. */
  tag?: string;
  quantity: number;
  inUse: number;
  /** Default 'In Compliance'. */
  status?: string;
  licenseType?: 'TERM' | 'PERPETUAL' | 'DEMO';
  /** yyyy-mm-dd; default 2025-01-01 .. 2027-12-31 for TERM. */
  startDate?: string;
  endDate?: string;
}

export interface FakeCssmOptions {
  ca?: TestCa;
  clientId?: string;
  clientSecret?: string;
  tokenTtlSeconds?: number;
  domain?: string;
  accountId?: string;
  virtualAccounts?: { name: string; id: string }[];
  licenses?: FakeLicense[];
  pollsBeforeComplete?: number;
  pageLimitMax?: number;
  /**
   * 'immediate' (default): a report already accepted is refused (FAILED) on every later upload.
   * 'after-complete': a report is known only once its poll has completed, so one sent again
   * before that is accepted again and shows in duplicates() (what a client that loses a poll_id
   * and re-sends would cause).
   */
  duplicateCheck?: 'immediate' | 'after-complete';
  /** The most licenses one entry of a transfer may move (GUESSED: the API documents a limit, not its value). */
  transferQuantityMax?: number;
  /**
   * How many positions reads (licenses calls at offset 0) answer without an accepted transfer
   * before one shows it: 0 (default) shows it at the next read; 'manual' only once the test
   * calls applyTransfers().
   */
  transferApplyAfterReads?: number | 'manual';
}

export interface TransferCallRecord {
  from: string;
  licenses: { license: string; licenseType: string; quantity: number; targetVirtualAccount: string }[];
  status: number;
}

export interface Udi {
  pid: string;
  serial: string;
}

export interface UploadRecord {
  udi: Udi;
  /** The virtual account's name. */
  va: string;
  reportIds: string[];
  pollId: string;
  at: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
}

export interface ReservationRecord {
  kind: 'reserve' | 'authorize' | 'return';
  va: string;
  udi?: Udi;
  reservationCode?: string;
  removeCode?: string;
  licenses: { tag: string; quantity: number }[];
  /** The authorization code handed out (reserve, authorize), or '' for a return. */
  code: string;
  pollId?: string;
  at: number;
}

export interface FaultSpec {
  path: RegExp | string;
  status: 429 | 500 | 503 | 401;
  times: number;
  retryAfterSeconds?: number;
}

export interface FakeCssm {
  url: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  ca: TestCa;
  domain: string;
  accountId: string;
  virtualAccounts: { name: string; id: string }[];
  uploads(): UploadRecord[];
  duplicates(): string[];
  /** Uploads refused because a report in them was already uploaded: (UDI, report id) keys, in order. */
  refusedDuplicates(): string[];
  requests(): RequestRecord[];
  reservations(): ReservationRecord[];
  /** Every transfer call, with what it asked and the status it got. */
  transfers(): TransferCallRecord[];
  fault(f: FaultSpec): void;
  /** Applies every transfer accepted and not yet shown in positions; returns how many. */
  applyTransfers(): number;
  /** Transfers accepted and not yet shown in positions. */
  pendingTransfers(): number;
  expireTokens(): void;
  setLicenses(l: FakeLicense[]): void;
  stop(): Promise<void>;
}

/** The key duplicates() and refusedDuplicates() name a report by. */
export const reportKey = (udi: Udi, reportId: string) => `${udi.pid}/${udi.serial}#${reportId}`;

export const DEFAULT_VAS = [
  { name: 'DEFAULT', id: '2001' },
  { name: 'Campus', id: '2002' },
];

/** The fixture's tag (shared fixtures/rum): a DNA Network Stack entitlement. */
export const FIXTURE_TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

export const DEFAULT_LICENSES: FakeLicense[] = [
  { va: 'DEFAULT', name: 'DNA Network Stack', tag: FIXTURE_TAG, quantity: 100, inUse: 40, licenseType: 'TERM' },
  { va: 'DEFAULT', name: 'C9800 Wireless Advantage', quantity: 50, inUse: 55, status: 'Out of Compliance', licenseType: 'TERM' },
  { va: 'Campus', name: 'DNA Network Stack', tag: FIXTURE_TAG, quantity: 20, inUse: 5, licenseType: 'TERM' },
  { va: 'Campus', name: 'Catalyst 9300 Network Essentials', quantity: 10, inUse: 0, licenseType: 'PERPETUAL' },
];

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface PollState {
  id: string;
  kind: 'usage' | 'authorize' | 'return';
  polls: number;
  udi: Udi;
  va: string;
  keys: string[];
  ack: string;
}

class BadRequest extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startFakeCssm(o: FakeCssmOptions = {}): Promise<FakeCssm> {
  const ca = o.ca ?? makeTestCa();
  const clientId = o.clientId ?? 'outpost-client';
  const clientSecret = o.clientSecret ?? `cssm-secret-${randomBytes(9).toString('base64url')}`;
  const ttl = o.tokenTtlSeconds ?? 3600;
  const domain = o.domain ?? 'example.com';
  const accountId = o.accountId ?? '1001';
  const vas = o.virtualAccounts ?? DEFAULT_VAS;
  const pollsBeforeComplete = o.pollsBeforeComplete ?? 2;
  const pageLimitMax = o.pageLimitMax ?? 50;
  const duplicateCheck = o.duplicateCheck ?? 'immediate';
  const transferQuantityMax = o.transferQuantityMax ?? 100;
  const applyAfter = o.transferApplyAfterReads ?? 0;
  if (applyAfter !== 'manual' && !(Number.isInteger(applyAfter) && applyAfter >= 0)) throw new Error(`transferApplyAfterReads must be a whole number, 0 or more, or 'manual': ${String(applyAfter)}`);
  /** Transfers accepted, in order, with the positions reads each has still to wait. */
  const pending: { from: string; entries: TransferCallRecord['licenses']; readsLeft: number }[] = [];
  const transfers: TransferCallRecord[] = [];
  let licenses = [...(o.licenses ?? DEFAULT_LICENSES)];

  const tokens = new Map<string, number>(); // token -> expires at (ms)
  const uploads: UploadRecord[] = [];
  const accepted = new Map<string, number>(); // report key -> times accepted
  const known = new Set<string>(); // keys the duplicate check refuses
  const refused: string[] = [];
  const requests: RequestRecord[] = [];
  const reservations: ReservationRecord[] = [];
  const polls = new Map<string, PollState>();
  const faults: (FaultSpec & { left: number })[] = [];
  let seq = 0;

  const server: Server = createServer({ cert: readFileSync(ca.server.cert), key: readFileSync(ca.server.key) }, (req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const path = (req.url ?? '').split('?')[0]!;
    let reply: Reply;
    const body = await readBody(req).catch(() => null);
    const fault = takeFault(path);
    if (fault) reply = fault;
    else if (body === null) reply = { status: 413, body: { status: 'FAILED', message: `request body over ${MAX_BODY} bytes`, message_code: 'PAYLOAD_TOO_LARGE' } };
    else {
      try {
        reply = route(method, path, req, body);
      } catch (e) {
        if (!(e instanceof BadRequest)) throw e;
        reply = path.includes('/v1/')
          ? { status: 400, body: { status: 'ERROR', statusMessage: e.message } }
          : { status: 400, body: { status: 'FAILED', message: e.message, message_code: 'BAD_REQUEST' } };
      }
    }
    requests.push({ method, path, status: reply.status });
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...reply.headers });
    res.end(text);
  }

  function takeFault(path: string): Reply | null {
    const f = faults.find((x) => x.left > 0 && (typeof x.path === 'string' ? path.includes(x.path) : x.path.test(path)));
    if (!f) return null;
    f.left--;
    switch (f.status) {
      case 429:
        return { status: 429, body: { status: 'FAILED', message: 'Too many requests', message_code: 'RATE_LIMITED' }, headers: { 'retry-after': String(f.retryAfterSeconds ?? 1) } };
      case 401:
        return unauthorized('The access token is no longer valid');
      default:
        return { status: f.status, body: { status: 'FAILED', message: `Service error ${f.status}`, message_code: 'SERVICE_ERROR' }, ...(f.retryAfterSeconds !== undefined ? { headers: { 'retry-after': String(f.retryAfterSeconds) } } : {}) };
    }
  }

  function unauthorized(why: string): Reply {
    return { status: 401, body: { error: 'invalid_token', error_description: why }, headers: { 'www-authenticate': `Bearer error="invalid_token"` } };
  }

  function route(method: string, path: string, req: IncomingMessage, body: Buffer): Reply {
    if (path === TOKEN_PATH) {
      if (method !== 'POST') return { status: 405, body: { error: 'invalid_request', error_description: 'use POST' }, headers: { allow: 'POST' } };
      return token(req, body);
    }
    if (!path.startsWith(`${API_BASE}/`)) return { status: 404, body: { status: 'FAILED', message: `no such resource: ${path}`, message_code: 'NOT_FOUND' } };
    // The gateway checks the token before it routes: an unknown path with no token is a 401.
    const auth = String(req.headers.authorization ?? '');
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(auth);
    if (!m) return unauthorized('A Bearer access token is required');
    const exp = tokens.get(m[1]!);
    if (exp === undefined) return unauthorized('Unknown access token');
    if (Date.now() >= exp) return unauthorized('The access token has expired');

    const rest = path.slice(API_BASE.length);
    const want = (verb: string): Reply | null => (method === verb ? null : { status: 405, body: { status: 'FAILED', message: `use ${verb}`, message_code: 'METHOD_NOT_ALLOWED' }, headers: { allow: verb } });
    if (rest === '/v2/accounts/search') return want('GET') ?? accountsSearch();
    if (rest === '/v2/devices/reportusage') return want('POST') ?? reportUsage(req, json(req, body));
    if (rest === '/v2/accounts/poll') return want('POST') ?? poll(json(req, body));
    if (rest === '/v2/devices/authrequest') return want('POST') ?? authRequest(req, json(req, body));
    const lic = /^\/v1\/accounts\/([^/]+)\/licenses$/.exec(rest);
    if (lic) return want('POST') ?? listLicenses(decodeURIComponent(lic[1]!), json(req, body));
    const res = /^\/v1\/accounts\/([^/]+)\/virtual-accounts\/([^/]+)\/reserve-licenses$/.exec(rest);
    if (res) return want('POST') ?? reserve(decodeURIComponent(res[1]!), decodeURIComponent(res[2]!), json(req, body));
    const trf = /^\/v1\/accounts\/([^/]+)\/virtual-accounts\/([^/]+)\/licenses\/transfer$/.exec(rest);
    if (trf) return want('POST') ?? transfer(decodeURIComponent(trf[1]!), decodeURIComponent(trf[2]!), json(req, body));
    return { status: 404, body: { status: 'FAILED', message: `no such resource: ${path}`, message_code: 'NOT_FOUND' } };
  }

  function token(req: IncomingMessage, body: Buffer): Reply {
    const oauthError = (status: number, error: string, description: string): Reply => ({ status, body: { error, error_description: description } });
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return oauthError(400, 'invalid_request', 'the token request must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(body.toString('utf8'));
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    // RFC 6749 §2.3.1 lets a client send its credentials as Basic authentication instead.
    const basic = /^Basic (.+)$/.exec(String(req.headers.authorization ?? ''));
    if (basic) {
      const [u, p] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      id = decodeURIComponent(u ?? '');
      secret = decodeURIComponent(p ?? '');
    }
    const grant = form.get('grant_type');
    if (!grant) return oauthError(400, 'invalid_request', 'grant_type is required');
    if (grant !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', `grant_type ${grant} is not supported`);
    if (!id || !secret) return oauthError(401, 'invalid_client', 'client_id and client_secret are required');
    if (id !== clientId || secret !== clientSecret) return oauthError(401, 'invalid_client', 'The client credentials are invalid');
    const t = randomBytes(24).toString('base64url');
    tokens.set(t, Date.now() + ttl * 1000);
    return { status: 200, body: { token_type: 'Bearer', expires_in: ttl, access_token: t, scope: 'customer' } };
  }

  function json(req: IncomingMessage, body: Buffer): unknown {
    const ct = String(req.headers['content-type'] ?? '').toLowerCase();
    if (!ct.startsWith('application/json')) throw new BadRequest(`Content-Type must be application/json, not "${ct || 'none'}"`);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new BadRequest(`the request body is not JSON: ${(e as Error).message}`);
    }
  }

  function accountsSearch(): Reply {
    return {
      status: 200,
      body: {
        status: 'COMPLETE',
        accounts: [
          {
            account_name: `${domain} account`,
            domain,
            account_id: accountId,
            account_type: 'CUSTOMER',
            virtual_accounts: vas.map((v) => ({ name: v.name, virtual_account_id: v.id, is_default: v.name === 'DEFAULT' })),
          },
        ],
      },
    };
  }

  /** The device headers every device call carries; returns the VA name and the UDI. */
  function deviceHeaders(req: IncomingMessage): { va: string; udi: Udi } {
    const sa = req.headers['x-csw-smart-account-id'];
    const vaId = req.headers['x-csw-virtual-account-id'];
    const sys = req.headers['x-csw-requesting-system'];
    if (!isText(sa)) throw new BadRequest('header X-CSW-SMART-ACCOUNT-ID is required');
    if (sa.trim() !== accountId) throw new BadRequest(`X-CSW-SMART-ACCOUNT-ID ${sa} is not a smart account these credentials reach`);
    if (!isText(vaId)) throw new BadRequest('header X-CSW-VIRTUAL-ACCOUNT-ID is required');
    const va = vas.find((v) => v.id === vaId.trim());
    if (!va) throw new BadRequest(`X-CSW-VIRTUAL-ACCOUNT-ID ${vaId} is not a virtual account of smart account ${accountId}`);
    if (!isText(sys)) throw new BadRequest('header X-CSW-REQUESTING-SYSTEM is required');
    let s: unknown;
    try {
      s = JSON.parse(sys);
    } catch {
      throw new BadRequest('X-CSW-REQUESTING-SYSTEM is not JSON');
    }
    if (!isObj(s) || !isText(s.udi_pid) || !isText(s.udi_serial_number)) throw new BadRequest('X-CSW-REQUESTING-SYSTEM must name udi_pid and udi_serial_number');
    return { va: va.name, udi: { pid: s.udi_pid, serial: s.udi_serial_number } };
  }

  /** The `data` envelope of v2 calls: timestamp (ms) and a 16-character nonce are required. */
  function envelope(body: unknown): Record<string, unknown> {
    if (!isObj(body) || !isObj(body.data)) throw new BadRequest('the body must be {"data": {...}}');
    const d = body.data;
    const ts = typeof d.timestamp === 'string' && /^\d+$/.test(d.timestamp) ? Number(d.timestamp) : d.timestamp;
    if (typeof ts !== 'number' || !Number.isInteger(ts) || ts < 1e12) throw new BadRequest('data.timestamp must be the time in milliseconds');
    if (typeof d.nonce !== 'string' || !/^[A-Za-z0-9]{16}$/.test(d.nonce)) throw new BadRequest('data.nonce must be 16 letters or digits');
    return d;
  }

  /** The (UDI, report id) of one RUM report object, read from inside its payload. */
  function readReport(r: unknown, i: number): { udi: Udi; reportId: string } {
    const where = `data.reports[${i}]`;
    if (!isObj(r)) throw new BadRequest(`${where} must be an object`);
    if (typeof r.payload !== 'string') throw new BadRequest(`${where}.payload must be a JSON document as a string`);
    if (!isObj(r.signature)) throw new BadRequest(`${where}.signature is required`);
    let p: unknown;
    try {
      p = JSON.parse(r.payload);
    } catch {
      throw new BadRequest(`${where}.payload is not JSON`);
    }
    if (!isObj(p) || !isObj(p.asset_identification)) throw new BadRequest(`${where}.payload has no asset_identification`);
    const a = p.asset_identification;
    const id = a.report_id;
    if (!(typeof id === 'number' && Number.isInteger(id)) && !(typeof id === 'string' && /^\d+$/.test(id))) throw new BadRequest(`${where}.payload has no report_id`);
    const sudi = isObj(a.instance) && isObj(a.instance.sudi) ? a.instance.sudi : null;
    if (!sudi || !isText(sudi.udi_pid) || !isText(sudi.udi_serial_number)) throw new BadRequest(`${where}.payload names no instance.sudi`);
    if (!Array.isArray(p.measurements)) throw new BadRequest(`${where}.payload has no measurements`);
    return { udi: { pid: sudi.udi_pid, serial: sudi.udi_serial_number }, reportId: String(id) };
  }

  function reportUsage(req: IncomingMessage, body: unknown): Reply {
    const { va, udi } = deviceHeaders(req);
    const d = envelope(body);
    if (!Array.isArray(d.reports) || d.reports.length === 0) throw new BadRequest('data.reports must be a non-empty array');
    // [SAMPLE-RUM] wraps a device's reports as {sudi, ..., usage: [...]}: both forms are read.
    const flat: unknown[] = [];
    for (const r of d.reports) {
      if (isObj(r) && Array.isArray(r.usage)) flat.push(...r.usage);
      else flat.push(r);
    }
    const read = flat.map((r, i) => readReport(r, i));
    const keys: string[] = [];
    for (const r of read) {
      if (r.udi.pid !== udi.pid || r.udi.serial !== udi.serial) {
        throw new BadRequest(`report ${r.reportId} belongs to ${r.udi.pid}/${r.udi.serial}, not to the requesting system ${udi.pid}/${udi.serial}`);
      }
      const k = reportKey(udi, r.reportId);
      if (keys.includes(k)) throw new BadRequest(`report ${r.reportId} appears twice in this request`);
      keys.push(k);
    }
    const dup = keys.filter((k) => known.has(k));
    if (dup.length > 0) {
      refused.push(...dup);
      const ids = dup.map((k) => k.split('#')[1]).join(', ');
      return { status: 200, body: { status: 'FAILED', message: `Usage report(s) already uploaded: ${ids}`, message_code: 'DUPLICATE_REPORT', timestamp: Date.now(), nonce: d.nonce } };
    }
    const pollId = newPollId();
    for (const k of keys) {
      accepted.set(k, (accepted.get(k) ?? 0) + 1);
      if (duplicateCheck === 'immediate') known.add(k);
    }
    const reportIds = read.map((r) => r.reportId);
    uploads.push({ udi, va, reportIds, pollId, at: Date.now() });
    const ackData = JSON.stringify({ udi: { udi_pid: udi.pid, udi_serial_number: udi.serial }, report_ids: reportIds, poll_id: pollId, virtual_account: va, timestamp: Date.now() });
    const ack = `<smartLicense><smartLicenseRumAck><data>${xmlEscape(ackData)}</data></smartLicenseRumAck></smartLicense>`;
    polls.set(pollId, { id: pollId, kind: 'usage', polls: 0, udi, va, keys, ack });
    return { status: 200, body: { status: 'OK_POLL', message: '', poll_id: pollId, timestamp: Date.now(), nonce: d.nonce } };
  }

  function newPollId(): string {
    seq++;
    return `${Date.now()}${String(seq).padStart(6, '0')}`;
  }

  function poll(body: unknown): Reply {
    const d = envelope(body);
    if (!isText(d.poll_id) && typeof d.poll_id !== 'number') throw new BadRequest('data.poll_id is required');
    if (!isText(d.action)) throw new BadRequest('data.action is required');
    const p = polls.get(String(d.poll_id));
    const base = { poll_id: String(d.poll_id), timestamp: Date.now(), nonce: d.nonce };
    if (!p) return { status: 200, body: { ...base, status: 'OK_POLL', message: `Poll id ${String(d.poll_id)} not found`, message_code: 'POLL_ID_NOT_FOUND' } };
    const want = p.kind === 'usage' ? 'acknowledgements' : 'authorizations';
    if (d.action !== want) throw new BadRequest(`poll ${p.id} is for ${want}, not ${d.action}`);
    p.polls++;
    if (p.polls <= pollsBeforeComplete) return { status: 200, body: { ...base, status: 'OK_POLL', message: '' } };
    if (p.kind === 'usage' && duplicateCheck === 'after-complete') for (const k of p.keys) known.add(k);
    return { status: 200, body: { ...base, status: 'COMPLETE', message: '', smart_license: Buffer.from(p.ack, 'utf8').toString('base64') } };
  }

  function authCode(seed: string, licenses: { tag: string; quantity: number }[], udi?: Udi): string {
    const sig = createHash('sha256').update(seed).digest('base64');
    const ents = licenses.map((l) => `<entitlement><tag>${xmlEscape(l.tag)}</tag><count>${l.quantity}</count></entitlement>`).join('');
    const pi = udi ? `<piid>${xmlEscape(udi.pid)}:${xmlEscape(udi.serial)}</piid>` : '';
    return `<smartLicenseAuthorization><authorizationCode>${pi}<entitlements>${ents}</entitlements><signature>${sig}</signature></authorizationCode></smartLicenseAuthorization>`;
  }

  function authRequest(req: IncomingMessage, body: unknown): Reply {
    const { va, udi } = deviceHeaders(req);
    const d = envelope(body);
    if (!Array.isArray(d.licenses) || d.licenses.length !== 1) throw new BadRequest('data.licenses must hold one entry for the requesting system');
    const l: unknown = d.licenses[0];
    if (!isObj(l) || !isObj(l.sudi) || !isText(l.sudi.udi_pid) || !isText(l.sudi.udi_serial_number)) throw new BadRequest('data.licenses[0].sudi must name udi_pid and udi_serial_number');
    if (l.sudi.udi_pid !== udi.pid || l.sudi.udi_serial_number !== udi.serial) throw new BadRequest('data.licenses[0].sudi is not the requesting system');
    if (!Array.isArray(l.keys)) throw new BadRequest('data.licenses[0].keys must be an array');
    const keys = l.keys.map((k: unknown, i) => {
      if (!isObj(k) || !isText(k.entitlement)) throw new BadRequest(`data.licenses[0].keys[${i}].entitlement is required`);
      const n = typeof k.count === 'string' && /^\d+$/.test(k.count) ? Number(k.count) : k.count;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new BadRequest(`data.licenses[0].keys[${i}].count must be a positive whole number`);
      return { tag: k.entitlement, quantity: n };
    });
    const removeCode = l.remove_code;
    if (removeCode !== undefined && removeCode !== null && !isText(removeCode)) throw new BadRequest('data.licenses[0].remove_code must be text');
    const isReturn = isText(removeCode);
    if (!isReturn && keys.length === 0) throw new BadRequest('data.licenses[0].keys must name at least one entitlement');
    const pollId = newPollId();
    const code = isReturn ? '' : authCode(`${pollId}/${udi.pid}/${udi.serial}`, keys, udi);
    const payload = isReturn
      ? `<smartLicense><smartLicenseAuthorizationReturn><removeCode>${xmlEscape(removeCode)}</removeCode><status>RETURNED</status></smartLicenseAuthorizationReturn></smartLicense>`
      : `<smartLicense>${code}</smartLicense>`;
    polls.set(pollId, { id: pollId, kind: isReturn ? 'return' : 'authorize', polls: 0, udi, va, keys: [], ack: payload });
    reservations.push({ kind: isReturn ? 'return' : 'authorize', va, udi, ...(isReturn ? { removeCode } : {}), licenses: keys, code, pollId, at: Date.now() });
    return { status: 200, body: { status: 'OK_POLL', message: '', poll_id: pollId, timestamp: Date.now(), nonce: d.nonce } };
  }

  function checkDomain(d: string): Reply | null {
    return d === domain ? null : { status: 404, body: { status: 'ERROR', statusMessage: `Smart account ${d} not found or not reachable with these credentials` } };
  }

  function listLicenses(d: string, body: unknown): Reply {
    const nf = checkDomain(d);
    if (nf) return nf;
    if (!isObj(body)) throw new BadRequest('the body must be a JSON object');
    const names = body.virtualAccounts ?? [];
    if (!Array.isArray(names) || !names.every(isText)) throw new BadRequest('virtualAccounts must be a list of virtual account names');
    for (const n of names) if (!vas.some((v) => v.name === n)) throw new BadRequest(`virtual account ${n} is not in smart account ${domain}`);
    const { limit, offset } = body;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) throw new BadRequest('limit must be a positive whole number');
    if (limit > pageLimitMax) throw new BadRequest(`limit ${limit} is over the maximum of ${pageLimitMax}`);
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw new BadRequest('offset must be a whole number, 0 or more');
    // A read starts at offset 0; its further pages must show the same state, so transfers land only there.
    if (offset === 0) {
      try {
        for (const p of [...pending]) {
          if (p.readsLeft > 0) p.readsLeft--;
          else applyPending(p);
        }
      } catch (e) {
        return { status: 500, body: { status: 'ERROR', statusMessage: (e as Error).message } };
      }
    }
    const wanted = names.length === 0 ? vas.map((v) => v.name) : names;
    const all = wanted.flatMap((va) => licenses.filter((l) => l.va === va));
    return { status: 200, body: { status: 'SUCCESS', totalRecords: all.length, licenses: all.slice(offset, offset + limit).map(licenseItem) } };
  }

  function licenseItem(l: FakeLicense): Record<string, unknown> {
    const type = l.licenseType ?? 'TERM';
    const reserved = reservations.filter((r) => r.kind === 'reserve' && r.va === l.va).reduce((n, r) => n + r.licenses.filter((x) => x.tag === l.tag).reduce((a, x) => a + x.quantity, 0), 0);
    return {
      license: l.name,
      ...(l.tag !== undefined ? { tag: l.tag } : {}),
      quantity: l.quantity,
      inUse: l.inUse,
      available: l.quantity - l.inUse,
      reserved,
      pendingQuantity: 0,
      status: l.status ?? 'In Compliance',
      billingType: 'PREPAID',
      ahaApps: false,
      isPortable: false,
      licenseSubstitutions: [],
      licenseDetails: [
        {
          licenseType: type,
          quantity: l.quantity,
          startDate: l.startDate ?? '2025-01-01',
          endDate: l.endDate ?? (type === 'PERPETUAL' ? null : '2027-12-31'),
          subscriptionId: type === 'TERM' ? `Sub${createHash('sha256').update(`${l.va}/${l.name}`).digest('hex').slice(0, 8).toUpperCase()}` : null,
          status: 'ACTIVE',
        },
      ],
      virtualAccount: l.va,
    };
  }

  /** Moves licenses between two virtual accounts: every entry checked first, then all applied. */
  function transfer(d: string, vaName: string, body: unknown): Reply {
    const nf = checkDomain(d);
    if (nf) return nf;
    if (!vas.some((v) => v.name === vaName)) return { status: 404, body: { status: 'ERROR', statusMessage: `virtual account ${vaName} is not in smart account ${domain}` } };
    if (!isObj(body) || !Array.isArray(body.licenses) || body.licenses.length === 0) throw new BadRequest('licenses must be a non-empty list');
    const entries = body.licenses.map((l: unknown, i) => {
      const where = `licenses[${i}]`;
      if (!isObj(l) || !isText(l.license)) throw new BadRequest(`${where}.license is required`);
      if (!isText(l.licenseType)) throw new BadRequest(`${where}.licenseType is required`);
      if (typeof l.quantity !== 'number' || !Number.isInteger(l.quantity) || l.quantity < 1) throw new BadRequest(`${where}.quantity must be a positive whole number`);
      if (l.quantity > transferQuantityMax) throw new BadRequest(`${where}.quantity ${l.quantity} is over the maximum of ${transferQuantityMax} per entry`);
      if (!isText(l.targetVirtualAccount) || !vas.some((v) => v.name === l.targetVirtualAccount)) throw new BadRequest(`${where}.targetVirtualAccount must name a virtual account of smart account ${domain}`);
      if (l.targetVirtualAccount === vaName) throw new BadRequest(`${where}.targetVirtualAccount is the source virtual account`);
      return { license: l.license, licenseType: l.licenseType, quantity: l.quantity, targetVirtualAccount: l.targetVirtualAccount };
    });
    const record = (status: number) => transfers.push({ from: vaName, licenses: entries.map((e) => ({ ...e })), status });
    // Checked against the licenses as they will be once every transfer already accepted has landed.
    let next = [...licenses];
    for (const p of pending) {
      const landed = moved(next, p.from, p.entries);
      if (typeof landed !== 'string') next = landed;
    }
    const after = moved(next, vaName, entries);
    if (typeof after === 'string') {
      record(400);
      return { status: 400, body: { status: 'ERROR', statusMessage: after } };
    }
    record(200);
    pending.push({ from: vaName, entries: entries.map((e) => ({ ...e })), readsLeft: applyAfter === 'manual' ? Number.POSITIVE_INFINITY : applyAfter });
    if (applyAfter === 0) {
      // Shown at once: the next read sees it whatever reads come before it.
      applyPending(pending[pending.length - 1]!);
    }
    return { status: 200, body: { status: 'SUCCESS' } };
  }

  /** The licenses with one call's entries moved, or the refusal's message when the source lacks them. */
  function moved(from: FakeLicense[], vaName: string, entries: TransferCallRecord['licenses']): FakeLicense[] | string {
    let next = [...from];
    for (const e of entries) {
      const i = next.findIndex((l) => l.va === vaName && l.name === e.license && (l.licenseType ?? 'TERM') === e.licenseType);
      const src = next[i];
      if (!src || src.quantity - src.inUse < e.quantity) {
        return `Insufficient licenses available: ${vaName} has ${src ? src.quantity - src.inUse : 0} ${e.license} (${e.licenseType}) available, ${e.quantity} requested`;
      }
      next[i] = { ...src, quantity: src.quantity - e.quantity };
      const j = next.findIndex((l) => l.va === e.targetVirtualAccount && l.name === e.license && (l.licenseType ?? 'TERM') === e.licenseType);
      if (j >= 0) next[j] = { ...next[j]!, quantity: next[j]!.quantity + e.quantity };
      else next = [...next, { ...src, va: e.targetVirtualAccount, quantity: e.quantity, inUse: 0, status: 'In Compliance' }];
    }
    return next;
  }

  /** Lands an accepted transfer; one the licenses no longer allow (the test changed them) is a test's mistake. */
  function applyPending(p: (typeof pending)[number]): void {
    const next = moved(licenses, p.from, p.entries);
    if (typeof next === 'string') throw new Error(`the double cannot apply an accepted transfer: ${next}`);
    licenses = next;
    pending.splice(pending.indexOf(p), 1);
  }

  function reserve(d: string, vaName: string, body: unknown): Reply {
    const nf = checkDomain(d);
    if (nf) return nf;
    if (!vas.some((v) => v.name === vaName)) return { status: 404, body: { status: 'ERROR', statusMessage: `virtual account ${vaName} is not in smart account ${domain}` } };
    if (!isObj(body) || !Array.isArray(body.reservationRequests) || body.reservationRequests.length === 0) throw new BadRequest('reservationRequests must be a non-empty list');
    const out = body.reservationRequests.map((r: unknown, i) => {
      const where = `reservationRequests[${i}]`;
      if (!isObj(r) || !isText(r.reservationCode)) throw new BadRequest(`${where}.reservationCode is required`);
      const type = r.reservationType ?? 'SPECIFIC';
      if (type !== 'SPECIFIC' && type !== 'UNIVERSAL') throw new BadRequest(`${where}.reservationType must be SPECIFIC or UNIVERSAL`);
      const ls = r.licenses ?? [];
      if (!Array.isArray(ls)) throw new BadRequest(`${where}.licenses must be a list`);
      if (type === 'SPECIFIC' && ls.length === 0) throw new BadRequest(`${where}.licenses must name at least one license for a SPECIFIC reservation`);
      const wanted = ls.map((l: unknown, j) => {
        if (!isObj(l) || !isText(l.entitlementTag)) throw new BadRequest(`${where}.licenses[${j}].entitlementTag is required`);
        if (typeof l.quantity !== 'number' || !Number.isInteger(l.quantity) || l.quantity < 1) throw new BadRequest(`${where}.licenses[${j}].quantity must be a positive whole number`);
        return { tag: l.entitlementTag, quantity: l.quantity };
      });
      return { reservationCode: r.reservationCode, type, wanted };
    });
    const codes = out.map((r) => {
      const code = authCode(`${r.reservationCode}/${vaName}`, r.wanted);
      reservations.push({ kind: 'reserve', va: vaName, reservationCode: r.reservationCode, licenses: r.wanted, code, at: Date.now() });
      return { reservationCode: r.reservationCode, reservationType: r.type, authorizationCode: code, status: 'SUCCESS' };
    });
    return { status: 200, body: { status: 'SUCCESS', authorizationCodes: codes } };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    url: `${origin}/services/api`,
    tokenUrl: `${origin}${TOKEN_PATH}`,
    clientId,
    clientSecret,
    ca,
    domain,
    accountId,
    virtualAccounts: vas,
    uploads: () => uploads.map((u) => ({ ...u, udi: { ...u.udi }, reportIds: [...u.reportIds] })),
    duplicates: () => [...accepted].filter(([, n]) => n > 1).map(([k]) => k),
    refusedDuplicates: () => [...refused],
    requests: () => requests.map((r) => ({ ...r })),
    reservations: () => reservations.map((r) => ({ ...r, licenses: r.licenses.map((l) => ({ ...l })) })),
    transfers: () => transfers.map((t) => ({ ...t, licenses: t.licenses.map((l) => ({ ...l })) })),
    fault: (f) => void faults.push({ ...f, left: f.times }),
    applyTransfers: () => {
      const n = pending.length;
      for (const p of [...pending]) applyPending(p);
      return n;
    },
    pendingTransfers: () => pending.length,
    expireTokens: () => {
      for (const t of tokens.keys()) tokens.set(t, 0);
    },
    setLicenses: (l) => void (licenses = [...l]),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('too large'));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
