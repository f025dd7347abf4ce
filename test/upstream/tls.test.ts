import { afterEach, describe, expect, it } from 'vitest';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/temp.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { SYNC_BASE } from '../../src/sync/protocol.js';

let up: RunningUpstream | undefined;
afterEach(async () => up?.stop(0));

/** A throwaway CA and a server certificate it signs, for 127.0.0.1. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=Outpost Test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

const configFor = (dir: string, upstream: Record<string, unknown>) =>
  loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, ...upstream } } as never });
const quiet = { logger: createLogger('error', true) };

function get(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ...(ca ? { ca } : {}) }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('the upstream listens on HTTPS', () => {
  it('when a certificate and key are configured, then it serves the protocol over HTTPS that a client trusting the CA reads, and one that does not refuses', async () => {
    const dir = tempDir('upstream-tls');
    const c = makeCerts(dir);
    up = await startUpstream(configFor(dir, { certFile: c.cert, keyFile: c.key }), quiet);
    expect(up.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await get(`${up.url}${SYNC_BASE}/hello`, readFileSync(c.ca));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ protocol: 'outpost-sync', versions: [1] });
    await expect(get(`${up.url}${SYNC_BASE}/hello`)).rejects.toMatchObject({ code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/) });
  });

  it('when only one of certificate and key is set, or a file cannot be read, or plain HTTP is asked for on a public address, then the start says which', async () => {
    const dir = tempDir('upstream-tls-bad');
    await expect(startUpstream(configFor(dir, { certFile: join(dir, 'x.pem') }), quiet)).rejects.toThrow(/certFile and upstream.keyFile go together: keyFile is not set/);
    await expect(startUpstream(configFor(dir, { certFile: join(dir, 'missing.pem'), keyFile: join(dir, 'missing.key') }), quiet)).rejects.toThrow(
      new RegExp(`cannot read the certificate \\(upstream.certFile\\) ${join(dir, 'missing.pem').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(ENOENT\\)`),
    );
    await expect(startUpstream(configFor(dir, { host: '0.0.0.0' }), quiet)).rejects.toThrow(/plain HTTP on 0\.0\.0\.0.*upstream\.allowPlainHttp/);
    // Nothing was opened: the store is free for the next start.
    up = await startUpstream(configFor(dir, {}), quiet);
    expect(up.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
