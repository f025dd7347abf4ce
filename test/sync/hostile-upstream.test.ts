import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { enrollOver } from '../upstream/sync-server.js';

let h: Harness | undefined;
let up: RunningUpstream | undefined;
let front: { url: string; close(): Promise<void>; fetches: number } | undefined;
afterEach(async () => {
  await h?.close();
  await front?.close();
  await up?.stop(0);
  h = up = front = undefined;
});

/**
 * An endpoint in front of a real upstream that relays everything but the fetch of an answer,
 * which it answers 202 at once, however long the collector asked it to wait.
 */
async function endless202(targetPort: number) {
  const sockets = new Set<Socket>();
  const state = { url: '', fetches: 0, close: () => Promise.resolve() };
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && /\/usage\/bun_[0-9a-z]+\/response/.test(req.url ?? '')) {
      state.fetches++;
      res.writeHead(202, { 'content-type': 'application/json', 'retry-after': '0' }).end(JSON.stringify({ status: 'queued', position: 0 }));
      return;
    }
    const fwd = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('connection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r())));
  return state;
}

it('when an endpoint answers every long poll 202 at once (Retry-After 0), then the collector asks again at most once a second, not in a tight loop', async () => {
  const dir = tempDir('hostile');
  up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, host: '127.0.0.1' }, shutdown: { graceSeconds: 1 } } }), {
    logger: createLogger('error', true),
  });
  front = await endless202(up.port);
  h = await startHarness({ config: { exchange: { mode: 'connected', connection: { url: front.url }, retry: { attempts: 2, baseSeconds: 0.01, maxSeconds: 0.02 } } } });
  await enrollOver(h, up);
  const d = await h.registered();
  await d.sendReport(d.report(TAG, 1));
  await h.api.post('/api/v1/exchange/sync').send({}).expect(202);
  const seen = () => front!.fetches;
  const end = Date.now() + 10_000;
  while (seen() === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(seen()).toBeGreaterThan(0);
  const first = seen();
  await new Promise((r) => setTimeout(r, 2000));
  // One a second at most: two seconds hold at most three more, however slow or fast the machine.
  expect(seen() - first).toBeLessThanOrEqual(3);
  expect((await h.api.get('/api/v1/exchange/status')).body).toMatchObject({ running: true, progress: { step: 'waiting' } });
});

async function fakeServer(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const connection = (url: string) => ({
  url, caFile: '', systemCa: true, pinSha256: '', proxyUrl: '', proxyUsername: '', proxyPasswordFile: '',
  connectTimeoutSeconds: 2, headersTimeoutSeconds: 2, bodyTimeoutSeconds: 2,
});

it('when an endpoint greets with a hello whose key, id or time is not a string, then not_outpost, not an internal error', async () => {
  const { UpstreamClient } = await import('../../src/sync/http-client.js');
  const fake = await fakeServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ protocol: 'outpost-sync', versions: [1], upstreamId: 'u', keyId: { $gt: '' }, time: 5 })),
  );
  const c = UpstreamClient.fromConfig(connection(fake.url));
  try {
    await expect(c.hello()).rejects.toMatchObject({ code: 'not_outpost' });
  } finally {
    await c.close();
    await fake.close();
  }
});

it('when an endpoint redirects to another host, then the redirect is not followed: an http error naming where it pointed', async () => {
  const { UpstreamClient } = await import('../../src/sync/http-client.js');
  let elsewhere = 0;
  const other = await fakeServer((_req, res) => (elsewhere++, res.writeHead(200).end()));
  const fake = await fakeServer((req, res) => res.writeHead(307, { location: `${other.url}${req.url}` }).end());
  const c = UpstreamClient.fromConfig(connection(fake.url));
  try {
    const e = await c.hello().then(() => null, (x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'http' });
    expect(e!.message).toContain('a redirect to');
    expect(elsewhere).toBe(0);
  } finally {
    await c.close();
    await fake.close();
    await other.close();
  }
});

it('when an endpoint trickles a JSON reply a byte at a time, each byte inside the body timeout, then the whole reply is bounded by that timeout', async () => {
  const { UpstreamClient } = await import('../../src/sync/http-client.js');
  const body = JSON.stringify({ protocol: 'outpost-sync', versions: [1], upstreamId: 'ups_x', keyId: 'k', time: new Date().toISOString() });
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    let i = 0;
    const drip = setInterval(() => (i < body.length ? res.write(body[i++]) : (clearInterval(drip), res.end())), 200);
    res.on('close', () => clearInterval(drip));
  });
  server.on('connection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const base = loadConfig({ env: {} }).exchange.connection;
  const client = UpstreamClient.fromConfig({ ...base, url: `http://127.0.0.1:${port}`, bodyTimeoutSeconds: 1 });
  try {
    const started = Date.now();
    const err = await client.hello().then(() => null, (e: unknown) => e as { code: string; message: string });
    expect(err).toMatchObject({ code: 'timeout', message: expect.stringContaining('a trickle at a time') });
    expect(Date.now() - started).toBeLessThan(body.length * 200); // cut well before the whole trickle
  } finally {
    await client.close();
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((r) => server.close(() => r()));
  }
});
