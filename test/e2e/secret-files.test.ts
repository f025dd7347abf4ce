import { chmodSync, copyFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { tempDir } from '../helpers/temp.js';

// Each start is expected to refuse before it listens; one that would serve instead is stopped by the timeout.
const START_MS = 10_000;
const collectorEnv = (dataDir: string, more: Record<string, string> = {}) => ({ ...envFor(dataDir), OUTPOST_HTTP_PORT: '0', OUTPOST_HTTP_HOST: '127.0.0.1', ...more });
const upstreamEnv = (more: Record<string, string> = {}) => ({ OUTPOST_UPSTREAM_PORT: '0', OUTPOST_UPSTREAM_HOST: '127.0.0.1', ...more });
const mode = (file: string) => statSync(file).mode & 0o777;

/** A collector's data folder with its identity made, as a first start leaves it. */
function site(): string {
  const dataDir = tempDataDir();
  loadOrCreateIdentity(dataDir);
  return dataDir;
}

/** The start was refused, naming the file and the fix, and the file was left as it was (not tightened behind the operator's back). */
function expectRefused(r: { code: number | null; stdout: string; stderr: string }, file: string, was: number): void {
  const out = r.stdout + r.stderr;
  expect(r.code, out).not.toBe(0);
  expect(out).toContain(`run chmod 600 ${file}`);
  expect(out).toContain('may be read by its group or others');
  expect(out).not.toContain('collector started');
  expect(mode(file)).toBe(was);
}

describe('start-up refuses a private key or secret file its group or others may read', () => {
  it.each([
    ['the identity key', 'collector.key', 0o644],
    ['the key that seals device passwords and the cloud client secret', 'secrets.key', 0o640],
    ['the hostname hashing key', 'hostname-hash.key', 0o604],
    ['a key retired by a rotation', 'collector.key.retired-00aa11bb', 0o644],
  ])('the collector refuses %s left readable (%s)', async (_what, name, loose) => {
    const dataDir = site();
    const file = join(dataDir, 'keys', name);
    if (name !== 'collector.key') writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    chmodSync(file, loose);
    expectRefused(await cli(['serve'], collectorEnv(dataDir), START_MS), file, loose);
  });

  it('the collector refuses a proxy password file left readable', async () => {
    const dataDir = site();
    const file = join(tempDir('proxy'), 'proxy-password');
    writeFileSync(file, 'proxy-password-not-for-others\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const env = collectorEnv(dataDir, {
      OUTPOST_EXCHANGE_CONNECTION_PROXY_URL: 'http://127.0.0.1:9', OUTPOST_EXCHANGE_CONNECTION_PROXY_USERNAME: 'site', OUTPOST_EXCHANGE_CONNECTION_PROXY_PASSWORD_FILE: file,
    });
    expectRefused(await cli(['serve'], env, START_MS), file, 0o644);
  });

  describe('the upstream', () => {
    let ca: TestCa;
    beforeAll(() => {
      ca = makeTestCa();
    });

    it('refuses its identity key left readable', async () => {
      const dir = tempDir('upstream');
      loadOrCreateIdentity(dir, 'upstream');
      const file = join(dir, 'keys', 'upstream.key');
      chmodSync(file, 0o644);
      const r = await cli(['upstream', 'serve', '--dir', dir], upstreamEnv(), START_MS);
      expectRefused(r, file, 0o644);
      expect(r.stdout + r.stderr).not.toContain('listening on');
    });

    it('refuses its TLS key left readable', async () => {
      const dir = tempDir('upstream');
      const key = join(tempDir('tls'), 'upstream-key.pem');
      copyFileSync(ca.server.key, key);
      chmodSync(key, 0o640);
      const r = await cli(['upstream', 'serve', '--dir', dir], upstreamEnv({ OUTPOST_UPSTREAM_CERT_FILE: ca.server.cert, OUTPOST_UPSTREAM_KEY_FILE: key }), START_MS);
      expectRefused(r, key, 0o640);
      expect(r.stdout + r.stderr).not.toContain('listening on');
    });
  });
});
