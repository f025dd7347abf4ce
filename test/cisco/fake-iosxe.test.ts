import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRumReport } from '../../src/rum/report.js';
import { startFakeIosXe, type FakeDevice, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa, pinOf, type TestCa } from '../helpers/test-ca.js';

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  pin: string;
}

/** One request on a new connection, as a collector would make it; rejects on TLS or network failure. */
function call(
  d: FakeDevice,
  method: string,
  path: string,
  o: { auth?: [string, string] | null; body?: string; ca?: string; contentType?: string; timeoutMs?: number; insecure?: boolean } = {},
): Promise<Answer> {
  const auth = o.auth === undefined ? [d.username, d.password] : o.auth;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: d.host,
        port: d.port,
        method,
        path,
        agent: false,
        ca: o.insecure ? undefined : o.ca,
        rejectUnauthorized: !o.insecure,
        headers: {
          ...(auth ? { authorization: `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString('base64')}` } : {}),
          ...(o.body !== undefined ? { 'content-type': o.contentType ?? 'application/json' } : {}),
        },
        timeout: o.timeoutMs ?? 5000,
      },
      (res) => {
        const pin = pinOf((res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.toString());
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, pin }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(o.body);
  });
}

let ca: TestCa;
let caPem: string;
let fake: FakeIosXe;

beforeAll(async () => {
  ca = makeTestCa();
  caPem = readFileSync(ca.caFile, 'utf8');
  fake = await startFakeIosXe({ count: 6, reportsPerDevice: 3, ca });
});
afterAll(() => fake?.stop());

const get = (d: FakeDevice, path: string, o: Parameters<typeof call>[3] = {}) => call(d, 'GET', path, { ca: caPem, ...o });
const post = (d: FakeDevice, path: string, body: string, o: Parameters<typeof call>[3] = {}) => call(d, 'POST', path, { ca: caPem, body, ...o });

describe('fake IOS-XE: authentication on every request', () => {
  it('answers 401 with a Basic challenge without credentials, with a wrong password, and on unknown paths', async () => {
    const d = fake.device(0);
    for (const path of ['/smartlic-service/all-reports', '/smartlic-service/list', '/no/such/path']) {
      const r = await get(d, path, { auth: null });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Basic /);
    }
    expect((await get(d, '/smartlic-service/all-reports', { auth: [d.username, 'wrong'] })).status).toBe(401);
    expect((await post(d, '/smartlic-service/close-reports', '{}', { auth: null })).status).toBe(401);
    expect(d.reports.every((r) => r.closed === (r !== d.reports.at(-1)))).toBe(true); // an unauthorized close closed nothing
    expect((await post(d, '/smartlic-service/import', '<smartLicense/>', { auth: null })).status).toBe(401);
    expect(d.imports).toEqual([]);
    expect((await get(d, '/no/such/path')).status).toBe(404);
    expect((await post(d, '/smartlic-service/all-reports', '{}')).status).toBe(405);
  });

  it('each device has its own credentials: device 1 refuses device 2 password', async () => {
    const [a, b] = [fake.device(1), fake.device(2)];
    expect((await get(a, '/smartlic-service/list', { auth: [b.username, b.password] })).status).toBe(401);
    expect((await get(a, '/smartlic-service/list')).status).toBe(200);
  });
});

describe('fake IOS-XE: shapes', () => {
  it('all-reports is {"usage": [...]} of {payload (JSON string), header, signature}, each a RUM report Outpost reads, with the device UDI', async () => {
    const d = fake.device(3);
    const r = await get(d, '/smartlic-service/all-reports');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    const body = JSON.parse(r.body) as { usage: { payload: string; header: object; signature: { sudi: object } }[] };
    expect(body.usage).toHaveLength(3);
    for (const u of body.usage) {
      expect(typeof u.payload).toBe('string');
      expect(u.header).toBeTypeOf('object');
      expect(u.signature).toMatchObject({ signing_type: 'builtin', sudi: { udi_pid: 'C9800-CL-K9', udi_serial_number: d.udi.serial } });
      const p = JSON.parse(u.payload);
      expect(Object.keys(p)).toEqual(['version', 'asset_identification', 'signature', 'meta', 'measurements']);
      const parsed = parseRumReport(JSON.stringify(u));
      if ('reason' in parsed) throw new Error(parsed.reason);
      expect(parsed.udi).toEqual(d.udi);
    }
    // The exact element texts are recorded, and they appear byte for byte in the body.
    expect(d.lastAllReports!.body).toBe(r.body);
    for (const e of d.lastAllReports!.elements) expect(r.body.includes(e)).toBe(true);
    expect(new Set(body.usage.map((u) => JSON.parse(u.payload).asset_identification.report_id)).size).toBe(3);
  });

  it('list is {"usage_list": [...]} with each report id and its times', async () => {
    const d = fake.device(3);
    const r = JSON.parse((await get(d, '/smartlic-service/list')).body) as { usage_list: { report_id: number; start_time: number; end_time: number; state: string }[] };
    expect(r.usage_list.map((x) => x.report_id)).toEqual(d.reports.map((x) => x.reportId));
    expect(r.usage_list.map((x) => x.state)).toEqual(['CLOSED', 'CLOSED', 'OPEN']);
    for (const x of r.usage_list) expect(x.end_time).toBeGreaterThan(x.start_time);
  });
});

describe('fake IOS-XE: close, growth, immutability', () => {
  it('an open report grows until closed; close-reports closes it; closed reports never change after', async () => {
    const d = fake.device(4);
    const idOf = (e: string) => JSON.parse(JSON.parse(e).payload).asset_identification.report_id as number;
    const countOf = (e: string) => JSON.parse(JSON.parse(e).payload).measurements.length as number;
    const before = fake.elements(4);
    fake.grow(4, 2);
    const grown = fake.elements(4);
    expect(grown.slice(0, 2)).toEqual(before.slice(0, 2)); // the closed ones: same bytes
    expect(idOf(grown[2]!)).toBe(idOf(before[2]!)); // the open one: same id, more measurements
    expect(countOf(grown[2]!)).toBe(countOf(before[2]!) + 2);

    expect((await post(d, '/smartlic-service/close-reports', 'test=', { contentType: 'application/json' })).status).toBe(200);
    const first = JSON.parse((await get(d, '/smartlic-service/all-reports')).body).usage.length;
    const closedText = d.lastAllReports!.elements;
    expect(first).toBe(3);
    expect(d.reports.filter((r) => r.closed)).toHaveLength(3);

    fake.grow(4, 3); // usage goes on in the report opened by the close
    const after = fake.elements(4);
    expect(after.slice(0, 3)).toEqual(closedText);
    // The bytes are fixed at close: even a test poking at a closed report's state cannot change what the device sends.
    d.reports[0]!.measurements.push({ start: 1, end: 2, count: 99 });
    expect(fake.elements(4).slice(0, 3)).toEqual(closedText);
    expect(after).toHaveLength(4);
    expect(idOf(after[3]!)).toBeGreaterThan(idOf(closedText[2]!));
    expect(countOf(after[3]!)).toBe(3);
  });

  it('ignoreClose + growOnPoll: the same open report comes back grown at each poll', async () => {
    const d = fake.device(5);
    await fake.setFaults(5, { ignoreClose: true, growOnPoll: true });
    const poll = async () => {
      expect((await post(d, '/smartlic-service/close-reports', '{}')).status).toBe(200);
      const u = JSON.parse((await get(d, '/smartlic-service/all-reports')).body).usage as { payload: string }[];
      const p = JSON.parse(u.at(-1)!.payload);
      return { id: p.asset_identification.report_id, n: p.measurements.length, closedTexts: d.lastAllReports!.elements.slice(0, -1) };
    };
    const a = await poll();
    const b = await poll();
    expect(b.id).toBe(a.id);
    expect(b.n).toBe(a.n + 1);
    expect(b.closedTexts).toEqual(a.closedTexts);
    await fake.setFaults(5, { ignoreClose: false, growOnPoll: false });
  });
});

describe('fake IOS-XE: import', () => {
  it('records each body as received, per device; base64 of XML is decoded in `text`', async () => {
    const ack = (id: number) => `<smartLicense><smartLicenseRumAck><data>ack-for-${id}</data></smartLicenseRumAck></smartLicense>`;
    expect((await post(fake.device(0), '/smartlic-service/import', ack(0))).status).toBe(200);
    expect((await post(fake.device(1), '/smartlic-service/import', Buffer.from(ack(1)).toString('base64'))).status).toBe(200);
    expect(fake.device(0).imports).toEqual([{ body: ack(0), text: ack(0), contentType: 'application/json' }]);
    expect(fake.device(1).imports.map((i) => i.text)).toEqual([ack(1)]);
    expect(fake.device(2).imports).toEqual([]);
    expect((await post(fake.device(2), '/smartlic-service/import', '')).status).toBe(400);
    expect((await post(fake.device(2), '/smartlic-service/import', 'x'.repeat(1024 * 1024 + 1))).status).toBe(413);
    expect(fake.device(2).imports).toEqual([]);
  });
});

describe('fake IOS-XE: fault knobs', () => {
  it('wrong password: the device changes its password and the old one gets 401', async () => {
    const d = fake.device(2);
    const old = d.password;
    d.password = 'rotated';
    expect((await get(d, '/smartlic-service/list', { auth: [d.username, old] })).status).toBe(401);
    expect((await get(d, '/smartlic-service/list')).status).toBe(200);
    d.password = old;
  });

  it('down: connection refused, then the same port answers again once up', async () => {
    const d = fake.device(1);
    const port = d.port;
    await fake.setFaults(1, { down: true });
    await expect(get(d, '/smartlic-service/list')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await fake.setFaults(1, { down: false });
    expect(d.port).toBe(port);
    expect((await get(d, '/smartlic-service/list')).status).toBe(200);
  });

  it('slow: a client timeout shorter than the delay fires; a longer one gets the answer', async () => {
    const d = fake.device(0);
    await fake.setFaults(0, { delayMs: 400 });
    await expect(get(d, '/smartlic-service/list', { timeoutMs: 100 })).rejects.toThrow('timeout');
    expect((await get(d, '/smartlic-service/list', { timeoutMs: 5000 })).status).toBe(200);
    await fake.setFaults(0, { delayMs: 0 });
  });

  it('certificates: CA-signed by default; a host-name mismatch, a rogue CA and self-signed are refused by a CA-verifying client; the pin identifies the certificate', async () => {
    const d = fake.device(3);
    expect((await get(d, '/smartlic-service/list')).pin).toBe(ca.server.pin);
    await fake.setFaults(3, { cert: ca.otherName });
    await expect(get(d, '/smartlic-service/list')).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await fake.setFaults(3, { cert: ca.rogue });
    await expect(get(d, '/smartlic-service/list')).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await fake.setFaults(3, { cert: ca.selfSigned });
    await expect(get(d, '/smartlic-service/list')).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const insecure = await get(d, '/smartlic-service/list', { insecure: true });
    expect(insecure.status).toBe(200);
    expect(insecure.pin).toBe(ca.selfSigned.pin);
    await fake.setFaults(3, { cert: null });
    expect((await get(d, '/smartlic-service/list')).pin).toBe(ca.server.pin);
  });

  it('malformed: truncated, not JSON, wrong shape, a payload that is not JSON', async () => {
    const d = fake.device(2);
    for (const mode of ['truncated', 'not-json', 'wrong-shape'] as const) {
      await fake.setFaults(2, { malformed: mode });
      const r = await get(d, '/smartlic-service/all-reports');
      expect(r.status).toBe(200);
      if (mode === 'wrong-shape') expect(Array.isArray(JSON.parse(r.body).usage)).toBe(false);
      else expect(() => JSON.parse(r.body)).toThrow();
    }
    await fake.setFaults(2, { malformed: 'bad-payload' });
    const u = JSON.parse((await get(d, '/smartlic-service/all-reports')).body).usage as { payload: string }[];
    expect(() => JSON.parse(u[0]!.payload)).toThrow();
    expect(() => JSON.parse(u[1]!.payload)).not.toThrow();
    await fake.setFaults(2, { malformed: null });
    expect(JSON.parse((await get(d, '/smartlic-service/all-reports')).body).usage).toHaveLength(3);
  });

  it('counts requests and connections per device, unauthorized ones included', async () => {
    const f = await startFakeIosXe({ count: 2, ca });
    try {
      const d = f.device(1);
      await call(d, 'GET', '/smartlic-service/list', { ca: caPem, auth: null });
      await call(d, 'GET', '/smartlic-service/list', { ca: caPem });
      await call(d, 'POST', '/smartlic-service/close-reports', { ca: caPem, body: '{}' });
      expect(d.seen).toEqual([
        { method: 'GET', path: '/smartlic-service/list', status: 401, authorized: false },
        { method: 'GET', path: '/smartlic-service/list', status: 200, authorized: true },
        { method: 'POST', path: '/smartlic-service/close-reports', status: 200, authorized: true },
      ]);
      expect(d.connections).toBe(3);
      expect(f.device(0).seen).toEqual([]);
      expect(f.requestCount()).toBe(3);
    } finally {
      await f.stop();
    }
  });
});

describe('fake IOS-XE: many devices from one process', () => {
  it('serves 300 devices, each on its own port with its own reports, and stops cleanly', async () => {
    const f = await startFakeIosXe({ count: 300, reportsPerDevice: 20, ca, cert: ca.selfSigned });
    try {
      expect(new Set(f.devices.map((d) => d.port)).size).toBe(300);
      const picks = [0, 137, 299].map((i) => f.device(i));
      for (const d of picks) {
        const u = JSON.parse((await call(d, 'GET', '/smartlic-service/all-reports', { insecure: true })).body).usage as { payload: string }[];
        expect(u).toHaveLength(20);
        expect(new Set(u.map((x) => JSON.parse(x.payload).asset_identification.instance.sudi.udi_serial_number))).toEqual(new Set([d.udi.serial]));
      }
    } finally {
      await f.stop();
    }
    await expect(call(f.device(0), 'GET', '/smartlic-service/list', { insecure: true })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
