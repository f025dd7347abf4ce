import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTcpServer } from '../../src/main.js';
import { close, listen } from '../../src/http/server.js';

let h: Harness;
let server: ReturnType<typeof createTcpServer>;
let port: number;
beforeEach(async () => {
  h = await startHarness();
  server = createTcpServer(h.services);
  await listen(server, 0, '127.0.0.1');
  port = (server.address() as { port: number }).port;
});
afterEach(async () => {
  await close(server);
  await h.close();
});

/** Sends raw bytes and reads the whole answer (the server closes the connection). */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (c) => (out += c));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

describe('requests the HTTP parser refuses', () => {
  it('when the URL is longer than the headers may be, then the answer is a 431 with a JSON error (found by the route fuzz: it was an empty body)', async () => {
    const answer = await raw(`GET /api/v1/devices?x=${'a'.repeat(20_000)} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'headers_too_large' } });
  });

  it('when the request is not HTTP at all, then a 400 with a JSON error', async () => {
    const answer = await raw('HELLO THERE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'malformed_request' } });
  });
});
