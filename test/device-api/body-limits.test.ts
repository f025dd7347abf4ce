import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTcpServer } from '../../src/main.js';
import { close, listen } from '../../src/http/server.js';
import { HEADER } from '../../src/device-api/signing.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';

let h: Harness;
let server: Server;
let port: number;
const sockets: Socket[] = [];

/** The harness's store and services behind the collector's own TCP server, with small limits. */
async function start(http: Record<string, number>) {
  h = await startHarness({ config: { http: { port: 0, allowedOrigins: [], ...http } } });
  server = createTcpServer(h.services);
  await listen(server, 0, '127.0.0.1');
  port = (server.address() as { port: number }).port;
}
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await close(server);
  await h.close();
});

/** A raw connection: the attacker sends what it likes, when it likes. */
function open(): Promise<Socket & { received: () => string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.once('error', () => {});
    s.once('connect', () => resolve(Object.assign(s, { received: () => data, ended: closed })));
    s.once('error', reject);
  });
}

const head = (deviceId: string, length: number) =>
  `POST /device/v1/report HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n` +
  `${HEADER.device}: ${deviceId}\r\n${HEADER.timestamp}: ${Math.floor(Date.now() / 1000)}\r\n${HEADER.signature}: AAAA\r\n\r\n`;

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

describe('a flood of unfinished request bodies', () => {
  it('when the headers name no registered device, then the answer comes before the body, and none of it is held', async () => {
    await start({ maxBodyBytes: 65536, maxBufferedBytes: 65536 });
    const conns = await Promise.all(Array.from({ length: 20 }, () => open()));
    for (const c of conns) c.write(head('dev_nobody', 60000) + 'x'.repeat(1000));
    for (const c of conns) expect(await until(() => c.received().includes('401')), c.received()).toBe(true);
    expect(conns[0]!.received()).toContain('unknown_device');
  });

  it('when a registered device holds bodies open, then past http.maxBufferedBytes they are refused (503), and the budget comes back when they close', async () => {
    await start({ maxBodyBytes: 32768, maxBufferedBytes: 65536 });
    const d = await h.registered('FLOODER');
    const conns = await Promise.all(Array.from({ length: 4 }, () => open()));
    for (const c of conns.slice(0, 3)) c.write(head(d.deviceId!, 32000) + 'x'.repeat(20000));
    await new Promise((r) => setTimeout(r, 200));
    for (const c of conns.slice(0, 3)) expect(c.received()).toBe(''); // 60,000 bytes held: within the budget
    conns[3]!.write(head(d.deviceId!, 32000) + 'x'.repeat(20000));
    expect(await until(() => conns[3]!.received().includes('503'))).toBe(true);
    expect(conns[3]!.received()).toContain('collector_busy');
    for (const c of conns) c.destroy();
    await Promise.all(conns.map((c) => c.ended));
    // Everything held was let go: an honest report fits again.
    const r = await new SimulatedDevice(`http://127.0.0.1:${port}`, d.collectorId, d.udi).send('GET', '/device/v1/collector', '');
    expect(r.status).toBe(200);
    expect((await d.sendReport(d.report(TAG, 1))).status).toBe(200);
  });

  it('when a body is declared larger than http.maxBodyBytes, then 413 comes at once, before any of it', async () => {
    await start({ maxBodyBytes: 1024 });
    const d = await h.registered('BIGDECL');
    const c = await open();
    c.write(head(d.deviceId!, 10_000_000));
    expect(await until(() => c.received().includes('413'))).toBe(true);
  });

  it('when a body stalls, then the request is cut after http.bodyTimeoutSeconds', async () => {
    await start({ bodyTimeoutSeconds: 1 });
    const d = await h.registered('STALL');
    const c = await open();
    const started = Date.now();
    c.write(head(d.deviceId!, 5000) + 'x'.repeat(100));
    await c.ended;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe('connections from one address', () => {
  it('when more than http.maxConnectionsPerAddress are open, then the next is closed at once, and a slot frees when one closes', async () => {
    await start({ maxConnectionsPerAddress: 4 });
    const held = await Promise.all(Array.from({ length: 4 }, () => open()));
    const extra = await open();
    await extra.ended;
    expect(extra.received()).toBe('');
    held[0]!.destroy();
    await held[0]!.ended;
    await new Promise((r) => setTimeout(r, 50));
    const again = await open();
    again.write('GET /device/v1/collector HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await until(() => again.received().includes('200 OK'))).toBe(true);
  });
});
