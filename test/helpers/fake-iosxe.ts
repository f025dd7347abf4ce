import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { makeTestCa, type TestCa, type TestCert } from './test-ca.js';

/*
 * A test double of IOS-XE product instances serving the Smart Licensing Using Policy REST API.
 *
 * Written only from public material; where a shape is not public the double says so, and a
 * collector must not depend on it:
 *  [DOC]  Cisco DevNet, "IOS XE Smart Licensing Using Policy API" (developer.cisco.com/docs/ios-xe/smart-licensing):
 *         "About the APIs": HTTPS, Basic authentication "performed for every request", Content-type
 *         application/json, methods GET and POST; endpoints close-reports, list ("report ID and
 *         timestamps"), all-reports, days, days/n, import. API reference (swagger 2.0, basePath
 *         /smartlic-service, securityDefinitions basic): the all-reports model requires `usage`, each
 *         with required `payload`, `header` and `signature`; "RUM reports, once closed, are immutable".
 *         "Recommended Workflows": POST close-reports, then GET all-reports; the RUM ACK goes back by
 *         POST import ("convert the RUM ACK file to a base64 encoded format").
 *  [SAMPLE] Cisco's sample client (Cisco Sample Code License, 2021; "Getting Started with IOS-XE SLP
 *         REST APIs", CiscoDevNet xe-sip-api-code): GET list reads `usage_list`; GET all-reports reads
 *         `usage` and iterates it as an array; POST close-reports sends a throwaway form body
 *         (`test=`) under a JSON content type, so the device must not insist on a JSON body; POST
 *         import sends the ACK file's XML text itself as the body (not base64, despite [DOC]).
 *  [FIXTURE] shared fixtures/rum/c9800-cl-example.xml (a real C9800-CL report, from
 *         xaviervalette/cisco-smart-licensing-using-policy): the inner shape of each report: `payload`
 *         a JSON document as a string (version, asset_identification.report_id/asset/instance.sudi,
 *         signature, meta.entitlement_tag/utility_enabled/software_version/ha_udi, measurements)
 *         and `signature` {sudi, signing_type "builtin", key, value}.
 *  [INVENTED] not public: the fields of `header`, the fields of each `usage_list` entry, the bodies
 *         of close-reports and import answers, the 401 realm, and the signature algorithm (the
 *         values here are SHA-256 digests so they look like the fixture's 32-byte values; no
 *         verifier can check them).
 *
 * Many devices from one process: one TCP listener per device on 127.0.0.1 (an ephemeral port
 * each, so a collector addresses a device by host:port as it would a real one), handing its
 * connections to one shared HTTPS server per certificate. A device is found by the local port
 * the connection arrived on, so faults and certificates are per device while the TLS and HTTP
 * machinery is shared: 1,000 devices cost 1,000 listening sockets and little else.
 */

/** The report tag of the fixture: a DNA Network Stack entitlement. */
export const FIXTURE_TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const ASSET = 'regid.2018-05.com.cisco.WLC_9500C,1.0_85665885-b865-4e32-8184-5510412fcb54';
const DAY = 86_400;
/** Import bodies above this are refused: an ACK file for one device is a few kilobytes. */
export const IMPORT_MAX_BYTES = 1024 * 1024;

export interface FakeMeasurement {
  start: number;
  end: number;
  count: number;
}

export interface FakeReport {
  reportId: number;
  tag: string;
  measurements: FakeMeasurement[];
  closed: boolean;
  /** The element's exact text, fixed when the report closed: what the device sends from then on. */
  frozen?: string;
}

/** How a device misbehaves. Applies to the next connection or request; all off by default. */
export interface DeviceFaults {
  /** The device refuses connections (its listener is closed: ECONNREFUSED); open connections are cut. */
  down: boolean;
  /** Answers each request this long after reading it (a collector's timeout should fire first). */
  delayMs: number;
  /** The certificate this device presents from its next connection on (default: the fake's `cert`). */
  cert: TestCert | null;
  /** all-reports and list answer 200 with a broken body. `bad-payload`: the first report's payload string is not JSON. */
  malformed: null | 'truncated' | 'not-json' | 'wrong-shape' | 'bad-payload';
  /** close-reports answers 200 but leaves the open report open. */
  ignoreClose: boolean;
  /** Each all-reports request first adds a measurement to every open report (usage goes on between polls). */
  growOnPoll: boolean;
}

export interface SeenRequest {
  method: string;
  path: string;
  status: number;
  /** Whether the request carried this device's credentials. */
  authorized: boolean;
}

export interface ImportRecord {
  /** The request body as received, decoded as UTF-8. */
  body: string;
  contentType: string;
  /** The body, or the text it decodes to when the whole body is base64 of an XML document ([DOC] asks for base64, [SAMPLE] sends XML). */
  text: string;
}

export interface FakeDevice {
  readonly index: number;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** host:port, as an operator would enter it. */
  readonly address: string;
  readonly udi: { pid: string; serial: string };
  /** The credentials the device accepts now (change `password` to make a collector's stored one wrong). */
  username: string;
  password: string;
  readonly faults: DeviceFaults;
  /** Every request that reached the HTTP layer, authorized or not, in order. */
  readonly seen: SeenRequest[];
  /** What POST /smartlic-service/import received (authorized requests only), in order. */
  readonly imports: ImportRecord[];
  readonly reports: FakeReport[];
  /** TCP connections accepted. */
  connections: number;
  /** The exact body of the last all-reports answer, and the exact text of each element in it. */
  lastAllReports: { body: string; elements: string[] } | null;
}

export interface FakeIosXeOptions {
  count: number;
  /** Reports each device holds at start, the last of them open (default 2). */
  reportsPerDevice?: number;
  /** Measurements in each report at start (default 2). */
  measurementsPerReport?: number;
  /** Give each device an open report at start (default true). */
  openReport?: boolean;
  /** Tags, used in turn by a device's reports (default: the fixture's). */
  tags?: string[];
  username?: string;
  /** Each device's password (default `secret-<index>`). */
  password?: (index: number) => string;
  /** A CA to take certificates from (default: a new one, see `ca` on the result). */
  ca?: TestCa;
  /** What devices present (default: ca.server, signed by the CA for 127.0.0.1). Most real devices are self-signed: pass ca.selfSigned. */
  cert?: TestCert;
  /** Start of the first measurement, unix seconds (default 1,700,006,400). */
  startTime?: number;
  /** Device i's serial number (default FAKE + 7 digits). */
  serial?: (index: number) => string;
  /** Give each device an HA standby in its reports' ha_udi (default false). */
  ha?: boolean;
}

export interface FakeIosXe {
  readonly devices: FakeDevice[];
  readonly ca: TestCa;
  readonly cert: TestCert;
  device(index: number): FakeDevice;
  /** Changes a device's faults; resolves once `down`/`up` has taken effect. */
  setFaults(index: number, faults: Partial<DeviceFaults>): Promise<void>;
  /** Adds `periods` one-day measurements to each open report of the device (closed ones never change). */
  grow(index: number, periods?: number): void;
  /** The exact text of each element the device's next all-reports would hold (no request, no growth). */
  elements(index: number): string[];
  /** Destroys open connections so the next request makes a new one (and meets the current cert). */
  dropConnections(index?: number): void;
  /** Total requests over all devices. */
  requestCount(): number;
  stop(): Promise<void>;
}

interface DeviceState extends FakeDevice {
  listener: NetServer;
  sockets: Set<Socket>;
  nextReportId: number;
  ha: boolean;
}

export async function startFakeIosXe(opts: FakeIosXeOptions): Promise<FakeIosXe> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`count must be a positive integer, got ${opts.count}`);
  const ca = opts.ca ?? makeTestCa();
  const cert = opts.cert ?? ca.server;
  const perDevice = opts.reportsPerDevice ?? 2;
  const perReport = opts.measurementsPerReport ?? 2;
  const tags = opts.tags ?? [FIXTURE_TAG];
  const t0 = opts.startTime ?? 1_700_006_400;
  const byPort = new Map<number, DeviceState>();
  const httpsByCert = new Map<string, HttpsServer>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const httpsFor = (c: TestCert): HttpsServer => {
    let s = httpsByCert.get(c.cert);
    if (!s) {
      s = createHttpsServer({ key: readFileSync(c.key), cert: readFileSync(c.cert) }, (req, res) => void handle(req, res));
      // TLS failures (a client refusing the certificate) are what some tests are about: not errors of the double.
      s.on('tlsClientError', () => {});
      httpsByCert.set(c.cert, s);
    }
    return s;
  };
  httpsFor(cert);

  const devices: DeviceState[] = [];
  for (let i = 0; i < opts.count; i++) {
    const d: DeviceState = {
      index: i,
      host: '127.0.0.1',
      port: 0,
      address: '',
      udi: { pid: 'C9800-CL-K9', serial: opts.serial?.(i) ?? `FAKE${String(i).padStart(7, '0')}` },
      username: opts.username ?? 'admin',
      password: opts.password?.(i) ?? `secret-${i}`,
      faults: { down: false, delayMs: 0, cert: null, malformed: null, ignoreClose: false, growOnPoll: false },
      seen: [],
      imports: [],
      reports: [],
      connections: 0,
      lastAllReports: null,
      listener: null as unknown as NetServer,
      sockets: new Set(),
      nextReportId: 1_671_840_750 + i * 1000,
      ha: opts.ha ?? false,
    };
    for (let k = 0; k < perDevice; k++) {
      const open = k === perDevice - 1 && opts.openReport !== false;
      const start = t0 + k * perReport * DAY;
      const r: FakeReport = {
        reportId: d.nextReportId++,
        tag: tags[k % tags.length]!,
        measurements: Array.from({ length: perReport }, (_, j) => ({ start: start + j * DAY, end: start + (j + 1) * DAY, count: 1 + ((i + k + j) % 5) })),
        closed: !open,
      };
      if (r.closed) r.frozen = elementText(d, r);
      d.reports.push(r);
    }
    d.listener = makeListener(d);
    devices.push(d);
  }
  await Promise.all(devices.map((d) => listen(d, 0)));

  function makeListener(d: DeviceState): NetServer {
    return createNetServer((sock) => {
      d.connections++;
      d.sockets.add(sock);
      sock.on('close', () => d.sockets.delete(sock));
      sock.on('error', () => {});
      httpsFor(d.faults.cert ?? cert).emit('connection', sock);
    });
  }

  function listen(d: DeviceState, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      d.listener.once('error', reject);
      d.listener.listen(port, '127.0.0.1', () => {
        d.listener.off('error', reject);
        const p = (d.listener.address() as { port: number }).port;
        (d as { port: number }).port = p;
        (d as { address: string }).address = `127.0.0.1:${p}`;
        byPort.set(p, d);
        resolve();
      });
    });
  }

  function close(d: DeviceState): Promise<void> {
    return new Promise((resolve) => {
      if (!d.listener.listening) return resolve();
      d.listener.close(() => resolve());
      for (const s of d.sockets) s.destroy();
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const d = byPort.get(req.socket.localPort ?? -1);
    if (!d) return void res.socket?.destroy();
    const body = await readBody(req, IMPORT_MAX_BYTES + 1).catch(() => null);
    const path = (req.url ?? '').split('?')[0]!;
    const authorized = isAuthorized(req, d);
    const reply = answer(d, req.method ?? '', path, authorized, body, String(req.headers['content-type'] ?? ''));
    d.seen.push({ method: req.method ?? '', path, status: reply.status, authorized });
    const send = () => {
      if (res.destroyed || stopped) return;
      res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply.body), ...reply.headers });
      res.end(reply.body);
    };
    if (d.faults.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, d.faults.delayMs);
      timers.add(t);
    } else send();
  }

  function answer(d: DeviceState, method: string, path: string, authorized: boolean, body: Buffer | null, contentType: string): Reply {
    // [DOC] authentication is performed for every request: nothing, not even a 404, before it.
    if (!authorized) return { status: 401, body: '{"error":"unauthorized"}', headers: { 'www-authenticate': 'Basic realm="fake-iosxe"' } };
    const route = ROUTES[path];
    if (!route) return { status: 404, body: '{"error":"not found"}' };
    if (route !== method) return { status: 405, body: '{"error":"method not allowed"}', headers: { allow: route } };
    switch (path) {
      case '/smartlic-service/close-reports': {
        if (!d.faults.ignoreClose) closeReports(d);
        return { status: 200, body: '{}' };
      }
      case '/smartlic-service/all-reports': {
        if (d.faults.growOnPoll) growDevice(d, 1);
        const elements = elementsOf(d);
        const text = `{"usage": [\n${elements.join(',\n')}\n]}`;
        d.lastAllReports = { body: text, elements };
        return { status: 200, body: malformed(d, text) };
      }
      case '/smartlic-service/list': {
        const list = d.reports
          .filter((r) => r.measurements.length > 0)
          .map((r) => ({ report_id: r.reportId, start_time: r.measurements[0]!.start, end_time: r.measurements.at(-1)!.end, state: r.closed ? 'CLOSED' : 'OPEN' }));
        return { status: 200, body: malformed(d, JSON.stringify({ usage_list: list })) };
      }
      case '/smartlic-service/import': {
        if (body === null || body.length > IMPORT_MAX_BYTES) return { status: 413, body: '{"error":"too large"}' };
        if (body.length === 0) return { status: 400, body: '{"error":"empty import"}' };
        const text = body.toString('utf8');
        d.imports.push({ body: text, contentType, text: decodeImport(text) });
        return { status: 200, body: '{}' };
      }
    }
    return { status: 404, body: '{"error":"not found"}' };
  }

  function malformed(d: DeviceState, text: string): string {
    switch (d.faults.malformed) {
      case null:
        return text;
      case 'truncated':
        return text.slice(0, Math.floor(text.length / 2));
      case 'not-json':
        return '<html><body>% Authorization failed</body></html>';
      case 'wrong-shape':
        return '{"usage": {"payload": 7}}';
      case 'bad-payload':
        return text.replace(/"payload": "/, '"payload": "{not json ');
    }
  }

  function elementsOf(d: DeviceState): string[] {
    return d.reports.filter((r) => r.measurements.length > 0).map((r) => r.frozen ?? elementText(d, r));
  }

  function closeReports(d: DeviceState): void {
    for (const r of d.reports) {
      if (r.closed || r.measurements.length === 0) continue;
      r.closed = true;
      r.frozen = elementText(d, r);
    }
    // Usage goes on after a close: the device opens a new report, empty (and so not listed) until it measures.
    if (!d.reports.some((r) => !r.closed)) {
      const last = d.reports.at(-1);
      d.reports.push({ reportId: d.nextReportId++, tag: last?.tag ?? tags[0]!, measurements: [], closed: false });
    }
  }

  function growDevice(d: DeviceState, periods: number): void {
    for (const r of d.reports) {
      if (r.closed) continue;
      for (let n = 0; n < periods; n++) {
        const prev = r.measurements.at(-1)?.end ?? d.reports.flatMap((x) => x.measurements).at(-1)?.end ?? t0;
        r.measurements.push({ start: prev, end: prev + DAY, count: 1 + ((d.index + r.measurements.length) % 5) });
      }
    }
  }

  const api: FakeIosXe = {
    devices,
    ca,
    cert,
    device: (index) => {
      const d = devices[index];
      if (!d) throw new Error(`no fake device ${index} (there are ${devices.length})`);
      return d;
    },
    async setFaults(index, faults) {
      const d = api.device(index) as DeviceState;
      const wasDown = d.faults.down;
      Object.assign(d.faults, faults);
      if (faults.down === true && !wasDown) await close(d);
      if (faults.down === false && wasDown) {
        byPort.delete(d.port);
        d.listener = makeListener(d);
        await listen(d, d.port);
      }
      if (faults.cert !== undefined) api.dropConnections(index);
    },
    grow: (index, periods = 1) => growDevice(api.device(index) as DeviceState, periods),
    elements: (index) => elementsOf(api.device(index) as DeviceState),
    dropConnections(index) {
      for (const d of index === undefined ? devices : [api.device(index) as DeviceState]) for (const s of d.sockets) s.destroy();
    },
    requestCount: () => devices.reduce((n, d) => n + d.seen.length, 0),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all(devices.map((d) => close(d)));
      for (const s of httpsByCert.values()) s.closeAllConnections();
    },
  };
  return api;
}

interface Reply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** Each path and the one method it takes ([DOC]). */
const ROUTES: Record<string, string> = {
  '/smartlic-service/close-reports': 'POST',
  '/smartlic-service/all-reports': 'GET',
  '/smartlic-service/list': 'GET',
  '/smartlic-service/import': 'POST',
};

function isAuthorized(req: IncomingMessage, d: FakeDevice): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(h);
  if (!m) return false;
  return Buffer.from(m[1]!, 'base64').toString('utf8') === `${d.username}:${d.password}`;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Keeps reading past the cap (so the answer can still be sent) but stops storing.
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decodeImport(body: string): string {
  const t = body.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0) {
    const dec = Buffer.from(t, 'base64').toString('utf8');
    if (dec.trimStart().startsWith('<')) return dec;
  }
  return body;
}

const digest = (s: string) => createHash('sha256').update(s).digest('base64');

/** One element of all-reports, as text: the fixture's shape, pretty-printed so a collector that re-serialises it changes its bytes. */
function elementText(d: { index: number; udi: { pid: string; serial: string }; ha: boolean }, r: FakeReport): string {
  const sudi = { udi_pid: d.udi.pid, udi_serial_number: d.udi.serial };
  const haUdi = [{ role: 'Active', sudi }];
  if (d.ha) haUdi.push({ role: 'Standby', sudi: { udi_pid: d.udi.pid, udi_serial_number: `${d.udi.serial}-SB` } });
  const identification = { report_id: r.reportId, asset: { name: ASSET }, instance: { sudi } };
  const meta = { entitlement_tag: r.tag, utility_enabled: false, software_version: '17.09.02', ha_udi: haUdi };
  const measurements = r.measurements.map((m) => ({
    log_time: m.start,
    metric_name: 'ENTITLEMENT',
    start_time: m.start,
    end_time: m.end,
    sample_interval: m.end - m.start,
    num_samples: Math.round((m.end - m.start) / 900),
    meta: { removed_sudi_list: [], added_sudi_list: [] },
    value: { type: 'COUNT', value: String(m.count) },
  }));
  // Keys in the fixture's order: version, asset_identification, signature, meta, measurements.
  const signed = digest(JSON.stringify([identification, meta, measurements]));
  const payload = JSON.stringify({
    version: '2.0',
    asset_identification: identification,
    signature: { signing_type: 'builtin', key: ASSET, value: signed },
    meta,
    measurements,
  });
  return JSON.stringify(
    {
      payload,
      header: { type: 'rum', report_id: r.reportId, state: r.closed ? 'CLOSED' : 'OPEN' },
      signature: { sudi, signing_type: 'builtin', key: ASSET, value: digest(payload) },
    },
    null,
    2,
  );
}
