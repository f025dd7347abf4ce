import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { runDoctor } from '../../src/doctor/run.js';
import { createLogger } from '../../src/shared/logger.js';
import { UpstreamClient } from '../../src/sync/http-client.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { tempDir } from '../helpers/temp.js';

/**
 * The doctor's upstream check against a real Outpost upstream on HTTPS (a test CA's certificate),
 * with the connection settings the sync uses: the pin, and an authenticating CONNECT proxy.
 */
describe('outpost doctor reaches the upstream as the sync does', () => {
  let ca: TestCa;
  let up: RunningUpstream;
  let proxy: ConnectProxy;
  const dir = tempDir('doctor-tls');

  beforeAll(async () => {
    ca = makeTestCa();
    const config = loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, certFile: ca.server.cert, keyFile: ca.server.key } } as never });
    up = await startUpstream(config, { logger: createLogger('error', true) });
    proxy = await startConnectProxy({ auth: { username: 'site', password: 'proxy-secret' } });
  }, 30_000);
  afterAll(async () => {
    await up?.stop(0);
    await proxy?.close();
  });

  const configWith = (connection: Record<string, unknown>): Config =>
    loadConfig({
      env: {},
      overrides: {
        dataDir: join(dir, 'collector'),
        exchange: { mode: 'connected', upstream: { kind: 'outpost' }, connection: { url: up.url, caFile: ca.caFile, systemCa: false, ...connection } },
      } as never,
    });
  const upstream = async (config: Config) => (await runDoctor(config, { timeoutMs: 5000 })).find((c) => c.name === 'upstream')!;

  it('passes with the pin of the upstream\'s key', async () => {
    const c = await upstream(configWith({ pinSha256: ca.server.pin }));
    // No collector has run in this data folder: there is no key to sign with, and the doctor says what it did not check.
    expect(c).toMatchObject({ status: 'ok', message: `the upstream at ${up.url} answers; credentials not checked (no collector key in ${join(dir, 'collector', 'keys')})` });
  });

  it('fails a pin that is not the upstream\'s key, with the message the sync gives', async () => {
    const config = configWith({ pinSha256: ca.rogue.pin });
    const client = UpstreamClient.fromConfig(config.exchange.connection);
    const syncSays = await client.hello().then(
      () => 'answered',
      (e: Error) => e.message,
    );
    await client.close();
    expect(syncSays).toContain(`presented a certificate whose key pin is ${ca.server.pin}, but exchange.connection.pinSha256 is ${ca.rogue.pin}`);
    const c = await upstream(config);
    expect(c.status).toBe('fail');
    expect(c.message).toBe(`the upstream at ${up.url} does not answer the sync: ${syncSays}`);
    expect(c.fix).toContain('pinSha256');
  });

  it('goes through the configured proxy, with its credentials, and fails when the proxy refuses them', async () => {
    const good = join(dir, 'proxy-password');
    writeFileSync(good, 'proxy-secret\n', { mode: 0o600 });
    const via = { proxyUrl: proxy.url, proxyUsername: 'site', pinSha256: ca.server.pin };
    const before = proxy.targets.length;
    expect(await upstream(configWith({ ...via, proxyPasswordFile: good }))).toMatchObject({ status: 'ok' });
    expect(proxy.targets.slice(before)).toEqual([new URL(up.url).host]);

    const bad = join(dir, 'wrong-proxy-password');
    writeFileSync(bad, 'not-it\n', { mode: 0o600 });
    const refusedBefore = proxy.refused.auth;
    const c = await upstream(configWith({ ...via, proxyPasswordFile: bad }));
    expect(c.status).toBe('fail');
    expect(c.message).toContain(proxy.url.replace('http://', ''));
    expect(c.fix).toContain('proxyPasswordFile');
    expect(proxy.refused.auth).toBe(refusedBefore + 1);
  });
});
