import https from 'node:https';
import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import type { Request } from 'express';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { makeTestCa, type TestCa, type TestCert } from '../helpers/test-ca.js';
import { TAG } from '../helpers/harness.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { loopbackOnly } from '../../src/http/loopback.js';
import { AppError } from '../../src/shared/errors.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  /** SHA-256 fingerprint of the certificate the server presented. */
  cert: string;
}

/** One request on a new connection (no keep-alive: each sees the certificate served now). */
function get(url: string, path: string, tls: https.RequestOptions = {}, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url + path, { agent: false, method: init.method ?? 'GET', headers: init.headers, ...tls }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text, cert }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

function plainGet(url: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(url + path, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    }).on('error', reject);
  });
}

const fingerprint = (c: TestCert) => new X509Certificate(readFileSync(c.cert)).fingerprint256;

async function logShows(p: ServerProcess, re: RegExp, times: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((p.log().match(new RegExp(re.source, 'g')) ?? []).length < times) {
    if (Date.now() > deadline) throw new Error(`the log never showed ${re} ${times} times:\n${p.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};

describe('the collector over HTTPS, a real process with a test CA', () => {
  const dataDir = tempDataDir();
  const tlsDir = join(dataDir, '..', 'tls');
  const certFile = join(tlsDir, 'cert.pem');
  const keyFile = join(tlsDir, 'key.pem');
  let ca: TestCa;
  let trust: https.RequestOptions;
  let p: ServerProcess;
  let url: string;
  let dispatcher: Dispatcher;

  /** Puts a pair where https.certFile and https.keyFile name it, the key mode 0600. */
  const install = (cert: TestCert, key: TestCert = cert) => {
    copyFileSync(cert.cert, certFile);
    copyFileSync(key.key, keyFile);
    chmodSync(keyFile, 0o600);
  };

  beforeAll(async () => {
    ca = makeTestCa();
    trust = { ca: readFileSync(ca.caFile) };
    mkdirSync(tlsDir, { recursive: true });
    install(ca.server);
    p = await serve(dataDir, { OUTPOST_HTTPS_HOST: '127.0.0.1', OUTPOST_HTTPS_PORT: '0', OUTPOST_HTTPS_CERT_FILE: certFile, OUTPOST_HTTPS_KEY_FILE: keyFile });
    url = /"https":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(p.log())![1]!;
    dispatcher = getGlobalDispatcher();
    setGlobalDispatcher(new Agent({ connect: { ca: trust.ca as Buffer } }));
  });
  afterAll(async () => {
    setGlobalDispatcher(dispatcher);
    await p?.stop();
  });

  it('serves the operator API with HSTS and the security headers, the device API without HSTS, and a device registers and reports over it', async () => {
    const identity = await get(url, '/api/v1/identity', trust);
    expect(identity.status).toBe(200);
    expect(identity.cert).toBe(fingerprint(ca.server));
    expect(identity.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(identity.headers).toMatchObject(SECURITY_HEADERS);

    // A state-changing request from a page on the collector's own HTTPS origin is its own, not cross-site.
    const vaId = (await get(url, '/api/v1/virtual-accounts', trust)).body.items[0].id as string;
    const token = await get(url, '/api/v1/tokens', trust, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: url },
      body: JSON.stringify({ vaId, description: 'https', maxUses: 1, expiresInDays: 1 }),
    });
    expect(token.status).toBe(201);

    const collector = await get(url, '/device/v1/collector', trust);
    expect(collector.status).toBe(200);
    expect(collector.headers['strict-transport-security']).toBeUndefined();
    const device = new SimulatedDevice(url, collector.body.collectorId, { pid: 'C9300-24T', serial: 'HTTPS1' });
    expect((await device.register(token.body.secret)).status).toBe(201);
    expect((await device.sendReport(device.report(TAG, 3))).status).toBe(200);
  });

  it('plain HTTP still serves the operator API on loopback, with the security headers and no HSTS', async () => {
    const r = await plainGet(p.url, '/api/v1/identity');
    expect(r.status).toBe(200);
    expect(r.headers).toMatchObject(SECURITY_HEADERS);
    expect(r.headers['strict-transport-security']).toBeUndefined();
  });

  it('a client that does not trust the CA is refused the handshake', async () => {
    await expect(get(url, '/api/v1/identity')).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await expect(get(url, '/api/v1/identity', { ca: readFileSync(ca.rogueCaFile) })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('SIGHUP swaps in a new certificate for new connections; a certificate for another name fails hostname verification; a broken pair is refused and the old one keeps serving', async () => {
    install(ca.otherName);
    p.proc.kill('SIGHUP');
    await logShows(p, /HTTPS certificate reloaded/, 1);
    await expect(get(url, '/api/v1/identity', trust)).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    const anyName = { ...trust, checkServerIdentity: () => undefined };
    expect((await get(url, '/api/v1/identity', anyName)).cert).toBe(fingerprint(ca.otherName));

    // The server's certificate with another certificate's key: refused, the pair in use stays.
    install(ca.server, ca.otherName);
    p.proc.kill('SIGHUP');
    await logShows(p, /new HTTPS certificate and key were refused/, 1);
    expect(p.log()).toMatch(/cannot be used together/);
    const still = await get(url, '/api/v1/identity', anyName);
    expect(still.status).toBe(200);
    expect(still.cert).toBe(fingerprint(ca.otherName));

    install(ca.server);
    p.proc.kill('SIGHUP');
    await logShows(p, /HTTPS certificate reloaded/, 2);
    const back = await get(url, '/api/v1/identity', trust);
    expect(back.status).toBe(200);
    expect(back.cert).toBe(fingerprint(ca.server));
    expect(p.proc.exitCode).toBeNull();
  });

  it('a key file its group or others may read stops start-up, naming the chmod that fixes it', async () => {
    const other = tempDataDir();
    const looseKey = join(tlsDir, 'loose-key.pem');
    copyFileSync(ca.server.key, looseKey);
    chmodSync(looseKey, 0o644);
    const r = await cli(['serve'], { ...envFor(other), OUTPOST_HTTP_PORT: '0', OUTPOST_HTTP_HOST: '127.0.0.1', OUTPOST_HTTPS_PORT: '0', OUTPOST_HTTPS_CERT_FILE: ca.server.cert, OUTPOST_HTTPS_KEY_FILE: looseKey });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`run chmod 600 ${looseKey}`);
    expect(r.stdout + r.stderr).not.toContain('collector started');
  });
});

describe('the operator API from another address', () => {
  const from = (remoteAddress: string, encrypted: boolean, users = false): Promise<AppError | undefined> =>
    new Promise((resolve) => {
      const req = { socket: { remoteAddress, ...(encrypted ? { encrypted: true } : {}) }, headers: { host: 'outpost.example:8443' } } as unknown as Request;
      loopbackOnly(() => users)(req, {} as never, (err?: unknown) => resolve(err as AppError | undefined));
    });

  it('over plain HTTP is refused: loopback only, as before', async () => {
    const e = await from('192.0.2.7', false);
    expect(e?.status).toBe(403);
    expect(e?.code).toBe('loopback_only');
  });

  it('over HTTPS is refused with a 403 saying users and roles are needed', async () => {
    const e = await from('192.0.2.7', true);
    expect(e?.status).toBe(403);
    expect(e?.code).toBe('users_and_roles_needed');
    expect(e?.message).toContain('users and roles');
  });

  it('once users exist, over HTTPS it is served (every caller then authenticates); over plain HTTP still loopback only', async () => {
    expect(await from('192.0.2.7', true, true)).toBeUndefined();
    expect((await from('192.0.2.7', false, true))?.code).toBe('loopback_only');
  });
});
