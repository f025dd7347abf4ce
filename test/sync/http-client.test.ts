import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, privateKeyObject } from '../../src/shared/ed25519.js';
import type { ConnectionConfig } from '../../src/sync/dispatcher.js';
import { UpstreamClient } from '../../src/sync/http-client.js';
import { BUNDLE_MEDIA_TYPE, HEADER, SYNC_BASE, verifyRequest, type RequestSigner } from '../../src/sync/protocol.js';
import { TransportError } from '../../src/sync/transport-error.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { CANNED, rawResponse, startFaultProxy, type FaultMode, type FaultProxy } from '../helpers/fault-proxy.js';
import { tempDir } from '../helpers/temp.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

const keys = generateKeyPair();
const signer: RequestSigner = { collectorId: 'col-1', keyId: 'key-1', privateKey: privateKeyObject(keys.seed) };
const BUNDLE = Buffer.alloc(4000, 7);

/** A stand-in upstream: just enough of the protocol to exercise the transport. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  if (url === `${SYNC_BASE}/hello`) {
    json(200, { protocol: 'outpost-sync', versions: [1], upstreamId: 'up-1', keyId: 'k', time: new Date().toISOString(), version: req.headers[HEADER.version] });
  } else if (req.method === 'POST' && url === `${SYNC_BASE}/usage`) {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => json(202, { status: 'queued', received: n, type: req.headers['content-type'], length: req.headers['content-length'] }, { 'retry-after': '1' }));
  } else if (url.startsWith(`${SYNC_BASE}/usage/`)) {
    try {
      verifyRequest({ method: 'GET', target: url, headers: req.headers }, () => keys.publicKey, Date.now());
    } catch (e) {
      json(401, { error: { code: (e as { code: string }).code, message: (e as Error).message } });
      return;
    }
    if (url.includes('/pending/')) json(202, { status: 'processing' }, { 'retry-after': '2' });
    else if (url.includes('/chunked/')) {
      res.writeHead(200, { 'content-type': BUNDLE_MEDIA_TYPE });
      res.write(BUNDLE.subarray(0, 2000));
      res.end(BUNDLE.subarray(2000));
    } else if (url.includes('/stall/')) {
      res.writeHead(200, { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': String(BUNDLE.length) });
      res.write(BUNDLE.subarray(0, 100)); // and then nothing
    } else res.writeHead(200, { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': String(BUNDLE.length) }).end(BUNDLE);
  } else if (url === '/portal/sync/v1/hello') {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html><title>Sign in</title></html>');
  } else json(404, { error: { code: 'not_found', message: 'no such route' } });
}

const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

let ca: TestCa;
let dir: string;
const servers: Server[] = [];
let httpPort: number;

async function httpsServer(cert: { cert: string; key: string }): Promise<number> {
  const s = createHttps({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, handler);
  servers.push(s);
  return listen(s);
}

const conn = (over: Partial<ConnectionConfig>): ConnectionConfig => ({
  url: '',
  caFile: ca.caFile,
  systemCa: false,
  pinSha256: '',
  proxyUrl: '',
  proxyUsername: '',
  proxyPasswordFile: '',
  connectTimeoutSeconds: 2,
  headersTimeoutSeconds: 1,
  bodyTimeoutSeconds: 1,
  ...over,
});

const clients: UpstreamClient[] = [];
const client = (over: Partial<ConnectionConfig>) => {
  const c = UpstreamClient.fromConfig(conn(over));
  clients.push(c);
  return c;
};

/** The TransportError a promise rejects with (fails the test if it resolves or throws anything else). */
async function failure(p: Promise<unknown>): Promise<TransportError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof TransportError)) throw new Error(`expected a TransportError, got ${inspect(e)}`);
  return e;
}

beforeAll(async () => {
  ca = makeTestCa();
  dir = tempDir('http-client');
  const plain = createHttp(handler);
  servers.push(plain);
  httpPort = await listen(plain);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

describe('TLS', () => {
  it('talks to an upstream whose certificate the configured CA signed, sending the protocol version', async () => {
    const port = await httpsServer(ca.server);
    const hello = await client({ url: `https://127.0.0.1:${port}` }).hello();
    expect(hello).toMatchObject({ protocol: 'outpost-sync', upstreamId: 'up-1', version: '1' });
    const viaName = await client({ url: `https://localhost:${port}` }).hello();
    expect(viaName.upstreamId).toBe('up-1');
  });

  it('refuses a certificate from a CA it does not trust, and a self-signed one', async () => {
    for (const cert of [ca.rogue, ca.selfSigned]) {
      const port = await httpsServer(cert);
      const e = await failure(client({ url: `https://127.0.0.1:${port}` }).hello());
      expect(e.code).toBe('tls');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/no trusted certificate authority signed.*caFile/);
    }
  });

  it('trusts only the CA file when systemCa is false, and the system roots besides when true', async () => {
    const port = await httpsServer(ca.server);
    // The rogue CA's file alone does not vouch for the server; adding the system roots does not either.
    const e = await failure(client({ url: `https://127.0.0.1:${port}`, caFile: ca.rogueCaFile, systemCa: true }).hello());
    expect(e.code).toBe('tls');
    expect((await client({ url: `https://127.0.0.1:${port}`, systemCa: true }).hello()).upstreamId).toBe('up-1');
  });

  it('refuses a certificate for another name, naming what it is for', async () => {
    const port = await httpsServer(ca.otherName);
    const e = await failure(client({ url: `https://127.0.0.1:${port}` }).hello());
    expect(e.code).toBe('tls');
    expect(e.message).toContain('DNS:upstream.other.example');
    expect(e.message).toContain('127.0.0.1');
  });

  it('accepts a certificate whose key matches the pin, and refuses one that does not, printing both pins', async () => {
    const port = await httpsServer(ca.server);
    const url = `https://127.0.0.1:${port}`;
    expect((await client({ url, pinSha256: ca.server.pin }).hello()).upstreamId).toBe('up-1');
    // The CA trusts this certificate; the pin still refuses it.
    const e = await failure(client({ url, pinSha256: ca.rogue.pin }).hello());
    expect(e.code).toBe('tls');
    expect(e.retryable).toBe(false);
    expect(e.message).toContain(ca.server.pin);
    expect(e.message).toContain(ca.rogue.pin);
    expect(e.details).toMatchObject({ presentedPin: ca.server.pin, expectedPin: ca.rogue.pin });
  });

  it('refuses a CA file that holds no certificate, and systemCa false with no CA file', () => {
    const bogus = join(dir, 'not-a-ca.pem');
    writeFileSync(bogus, 'hello\n');
    expect(() => UpstreamClient.fromConfig(conn({ url: 'https://127.0.0.1:1', caFile: bogus }))).toThrow(/holds no PEM certificate/);
    expect(() => UpstreamClient.fromConfig(conn({ url: 'https://127.0.0.1:1', caFile: '' }))).toThrow(/no certificate authority would be trusted/);
  });
});

describe('through an HTTP CONNECT proxy', () => {
  let proxy: ConnectProxy;
  let open: ConnectProxy;
  let port: number;
  const password = 'pr0xy-s3cret-Zq';
  const pwFile = () => {
    const f = join(dir, `pw-${Math.random()}`);
    writeFileSync(f, `${password}\n`, { mode: 0o600 });
    return f;
  };
  beforeAll(async () => {
    proxy = await startConnectProxy({ auth: { username: 'outpost', password } });
    open = await startConnectProxy();
    port = await httpsServer(ca.server);
  });
  afterAll(async () => {
    await proxy.close();
    await open.close();
  });

  it('tunnels to the upstream with Basic proxy authentication, TLS checked end to end', async () => {
    const c = client({ url: `https://127.0.0.1:${port}`, proxyUrl: proxy.url, proxyUsername: 'outpost', proxyPasswordFile: pwFile(), pinSha256: ca.server.pin });
    expect((await c.hello()).upstreamId).toBe('up-1');
    expect(proxy.targets).toContain(`127.0.0.1:${port}`);
  });

  it('tunnels a plain-http loopback upstream too, and a proxy without authentication', async () => {
    const c = client({ url: `http://127.0.0.1:${httpPort}`, proxyUrl: open.url });
    expect((await c.hello()).upstreamId).toBe('up-1');
    expect(open.targets).toEqual([`127.0.0.1:${httpPort}`]);
  });

  it('reports 407 as a proxy error, without authentication or with a wrong password, and never shows the password', async () => {
    const none = await failure(client({ url: `https://127.0.0.1:${port}`, proxyUrl: proxy.url }).hello());
    expect(none.code).toBe('proxy');
    expect(none.retryable).toBe(false);
    expect(none.message).toMatch(/requires authentication \(407/);
    const wrongFile = join(dir, 'wrong-pw');
    writeFileSync(wrongFile, 'not-it', { mode: 0o600 });
    const wrong = await failure(client({ url: `https://127.0.0.1:${port}`, proxyUrl: proxy.url, proxyUsername: 'outpost', proxyPasswordFile: wrongFile }).hello());
    expect(wrong.code).toBe('proxy');
    expect(wrong.message).toContain('refused the credentials of user outpost');
    expect(wrong.message).toContain(wrongFile);
    expect(proxy.refused.auth).toBe(2);
  });

  it('never puts the proxy password or its Authorization header in an error', async () => {
    const token = Buffer.from(`outpost:${password}`).toString('base64');
    const down = await startConnectProxy();
    const downUrl = down.url;
    await down.close(); // nothing listens there now
    const errors = [
      await failure(client({ url: `https://127.0.0.1:${port}`, proxyUrl: downUrl, proxyUsername: 'outpost', proxyPasswordFile: pwFile() }).hello()),
      await failure(client({ url: `https://127.0.0.1:${port}`, proxyUrl: proxy.url, proxyUsername: 'outpost', proxyPasswordFile: pwFile(), pinSha256: ca.rogue.pin }).hello()),
      await failure(client({ url: `https://127.0.0.1:${await httpsServer(ca.rogue)}`, proxyUrl: proxy.url, proxyUsername: 'outpost', proxyPasswordFile: pwFile() }).hello()),
    ];
    expect(errors.map((e) => e.code)).toEqual(['proxy', 'tls', 'tls']);
    expect(errors[0]!.retryable).toBe(true);
    for (const e of errors) {
      const shown = `${e.message}\n${inspect(e, { depth: 10 })}\n${JSON.stringify(e)}`;
      expect(shown).not.toContain(password);
      expect(shown).not.toContain(token);
    }
  });

  it('refuses a proxy password file that its group or others may read, without using it', () => {
    const f = pwFile();
    chmodSync(f, 0o644);
    let e: unknown;
    try {
      UpstreamClient.fromConfig(conn({ url: `https://127.0.0.1:${port}`, proxyUrl: proxy.url, proxyUsername: 'outpost', proxyPasswordFile: f }));
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('config');
    expect((e as TransportError).message).toBe(`the proxy password file ${f} may be read by its group or others (mode 0644): it is not used; run chmod 600 ${f}`);
  });

  it('refuses credentials in the proxy URL, which would be shown wherever the URL is', () => {
    expect(() => UpstreamClient.fromConfig(conn({ url: `https://127.0.0.1:${port}`, proxyUrl: `http://u:p@127.0.0.1:${proxy.port}` }))).toThrow(/carries credentials/);
  });
});

describe('requests', () => {
  it('posts a bundle streamed with its length and media type, and returns the JSON answer', async () => {
    const port = await httpsServer(ca.server);
    const f = join(dir, 'usage.bundle');
    writeFileSync(f, BUNDLE);
    const r = await client({ url: `https://127.0.0.1:${port}` }).postBundle(`${SYNC_BASE}/usage`, f);
    expect(r).toMatchObject({ status: 202, retryAfterSeconds: 1, json: { status: 'queued', received: BUNDLE.length, type: BUNDLE_MEDIA_TYPE, length: String(BUNDLE.length) } });
  });

  it('signs a GET over the exact target it sends, wait included, and streams a 200 bundle to a file', async () => {
    const c = client({ url: `http://127.0.0.1:${httpPort}` });
    for (const kind of ['b1', 'chunked']) {
      const toFile = join(dir, `${kind}.bundle`);
      const r = await c.getSigned(`${SYNC_BASE}/usage/${kind}/response`, signer, Date.now(), { toFile, maxBytes: BUNDLE.length, wait: 0 });
      expect(r).toMatchObject({ status: 200, file: toFile, bytes: BUNDLE.length });
      expect(readFileSync(toFile).equals(BUNDLE)).toBe(true);
    }
    const pending = await c.getSigned(`${SYNC_BASE}/usage/pending/response`, signer, Date.now(), { toFile: join(dir, 'p.bundle'), maxBytes: 10, wait: 1 });
    expect(pending).toMatchObject({ status: 202, json: { status: 'processing' }, retryAfterSeconds: 2 });
    const unsigned = await c.getSigned(`${SYNC_BASE}/usage/b1/response`, signer, Date.now() - 3_600_000, { toFile: join(dir, 'x.bundle'), maxBytes: 10 });
    expect(unsigned.json).toMatchObject({ error: { code: 'bad_date' } });
    expect(unsigned.status).toBe(401);
  });

  it('refuses a bundle past the byte bound, declared or not, and keeps nothing of it', async () => {
    const c = client({ url: `http://127.0.0.1:${httpPort}` });
    for (const kind of ['b1', 'chunked']) {
      const toFile = join(dir, `big-${kind}.bundle`);
      const e = await failure(c.getSigned(`${SYNC_BASE}/usage/${kind}/response`, signer, Date.now(), { toFile, maxBytes: BUNDLE.length - 1 }));
      expect(e.code).toBe('too_large');
      expect(e.retryable).toBe(false);
      expect(existsSync(toFile) || existsSync(`${toFile}.part`)).toBe(false);
    }
  });

  it('reports a 200 that is not an Outpost reply (a portal page) as not_outpost', async () => {
    const e = await failure(client({ url: `http://127.0.0.1:${httpPort}/portal` }).hello());
    expect(e.code).toBe('not_outpost');
    expect(e.message).toContain('text/html');
  });

  it('reports a reply that stalls mid-body as a body timeout', async () => {
    const e = await failure(client({ url: `http://127.0.0.1:${httpPort}` }).getSigned(`${SYNC_BASE}/usage/stall/response`, signer, Date.now(), { toFile: join(dir, 's.bundle'), maxBytes: 1e6 }));
    expect(e).toMatchObject({ code: 'timeout', retryable: true, details: { phase: 'body' } });
    expect(existsSync(join(dir, 's.bundle.part'))).toBe(false);
  });

  it('reports nothing listening as unreachable, naming host:port', async () => {
    const s = createHttp();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    const e = await failure(client({ url: `http://127.0.0.1:${port}` }).hello());
    expect(e).toMatchObject({ code: 'unreachable', retryable: true });
    expect(e.message).toContain(`127.0.0.1:${port}`);
  });
});

describe('network faults', () => {
  let fault: FaultProxy;
  let tlsFault: FaultProxy;
  beforeAll(async () => {
    fault = await startFaultProxy(httpPort);
    tlsFault = await startFaultProxy(await httpsServer(ca.server));
  });
  afterAll(async () => {
    await fault.close();
    await tlsFault.close();
  });

  const bundleFile = () => {
    const f = join(dir, 'up.bundle');
    writeFileSync(f, BUNDLE);
    return f;
  };
  const cases: { name: string; mode: FaultMode; call: 'hello' | 'post' | 'get'; code: string; retryable: boolean; message: RegExp }[] = [
    { name: 'refuse', mode: { kind: 'refuse' }, call: 'hello', code: 'cut', retryable: true, message: /closed before a reply arrived/ },
    { name: 'cut mid-request', mode: { kind: 'cutRequest', afterBytes: 1000 }, call: 'post', code: 'cut', retryable: true, message: /closed before a reply arrived/ },
    { name: 'cut mid-response', mode: { kind: 'cutResponse', afterBytes: 300 }, call: 'get', code: 'cut', retryable: true, message: /closed in the middle of its reply/ },
    { name: 'cut in the headers', mode: { kind: 'cutResponse', afterBytes: 20 }, call: 'hello', code: 'cut', retryable: true, message: /closed/ },
    // undici's timers tick about once a second: a 1 s headers timeout fires between 1 and 2 s, so the reply comes well after that.
    { name: 'slower than the headers timeout', mode: { kind: 'delay', ms: 3500 }, call: 'hello', code: 'timeout', retryable: true, message: /did not answer within the headers timeout/ },
    { name: '500', mode: { kind: 'canned', response: CANNED.serverError }, call: 'post', code: 'http', retryable: true, message: /answered 500 with error internal: boom/ },
    { name: '503 with Retry-After', mode: { kind: 'canned', response: CANNED.unavailable(7) }, call: 'get', code: 'http', retryable: true, message: /answered 503 .*retry after 7 s/ },
    { name: 'HTML 502 from a proxy', mode: { kind: 'canned', response: CANNED.htmlBadGateway }, call: 'hello', code: 'http', retryable: true, message: /answered 502 with an HTML page \("502 Bad Gateway"\), not an Outpost reply/ },
    { name: 'HTML 200 from a portal', mode: { kind: 'canned', response: CANNED.htmlOk }, call: 'post', code: 'not_outpost', retryable: false, message: /answered 200 with text\/html/ },
    { name: 'JSON 200 where a bundle belongs', mode: { kind: 'canned', response: rawResponse(200, 'OK', '{}', { 'content-type': 'application/json' }) }, call: 'get', code: 'not_outpost', retryable: false, message: /answered 200 with application\/json, where an Outpost upstream sends a bundle/ },
    { name: 'garbage', mode: { kind: 'canned', response: 'SSH-2.0-OpenSSH\r\n' }, call: 'hello', code: 'not_outpost', retryable: false, message: /not HTTP/ },
  ];
  for (const t of cases) {
    it(`maps "${t.name}" to ${t.code}${t.retryable ? ' (retryable)' : ''}`, async () => {
      fault.setMode(t.mode, { once: true });
      const c = client({ url: fault.url });
      const call =
        t.call === 'hello' ? c.hello() : t.call === 'post' ? c.postBundle(`${SYNC_BASE}/usage`, bundleFile()) : c.getSigned(`${SYNC_BASE}/usage/b1/response`, signer, Date.now(), { toFile: join(dir, 'f.bundle'), maxBytes: 1e6 });
      const e = await failure(call);
      expect({ code: e.code, retryable: e.retryable }).toEqual({ code: t.code, retryable: t.retryable });
      expect(e.message).toMatch(t.message);
      expect(fault.mode.kind).toBe('pass');
      // Healed: the same client succeeds on its next request.
      expect((await c.hello()).upstreamId).toBe('up-1');
    });
  }

  it('maps faults on a TLS connection the same way, and counts what it relays', async () => {
    const url = `https://127.0.0.1:${tlsFault.port}`;
    tlsFault.setMode({ kind: 'cutResponse', afterBytes: 2000 }, { once: true });
    const cut = await failure(client({ url }).getSigned(`${SYNC_BASE}/usage/b1/response`, signer, Date.now(), { toFile: join(dir, 't.bundle'), maxBytes: 1e6 }));
    expect({ code: cut.code, retryable: cut.retryable }).toEqual({ code: 'cut', retryable: true });
    tlsFault.setMode({ kind: 'refuse' }, { once: true });
    expect((await failure(client({ url }).hello())).code).toBe('cut');
    const before = { ...tlsFault.stats };
    expect((await client({ url }).hello()).upstreamId).toBe('up-1');
    expect(tlsFault.stats.connections).toBe(before.connections + 1);
    expect(tlsFault.stats.bytesUp).toBeGreaterThan(before.bytesUp);
    expect(tlsFault.stats.bytesDown).toBeGreaterThan(before.bytesDown);
  });
});
