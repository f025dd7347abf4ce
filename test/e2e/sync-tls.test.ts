import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { serveUpstream, type UpstreamProcess } from '../helpers/upstream-process.js';
import { makeTestCa, type TestCa, type TestCert } from '../helpers/test-ca.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { cliJson, collectorAcks, Fleet, freePort, readDb, upstreamReportIds } from '../helpers/sync-site.js';
import { TAG } from '../helpers/harness.js';

/**
 * Connected mode over TLS as a site runs it: `outpost upstream serve` on HTTPS from a test CA's
 * certificate, the collector a separate process trusting that CA, the CLI on both sides, and
 * the same set-up through an authenticating CONNECT proxy. Restarts keep each side's store and
 * port; only the certificate or the collector's connection settings change between steps.
 */
describe('connected mode over TLS, with real processes', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  const upDir = env.OUTPOST_UPSTREAM_DATA_DIR!;
  let ca: TestCa;
  let up: UpstreamProcess | undefined;
  let col: ServerProcess | undefined;
  let fleet: Fleet;
  let proxy: ConnectProxy;
  let upPort: number;
  let colPort: number;
  let upUrl: string;

  const startUpstream = async (cert: TestCert) => {
    await up?.stop();
    up = await serveUpstream(upDir, { OUTPOST_UPSTREAM_PORT: String(upPort), OUTPOST_UPSTREAM_CERT_FILE: cert.cert, OUTPOST_UPSTREAM_KEY_FILE: cert.key });
  };
  /** The collector in connected mode, trusting the test CA only; `connection` adds OUTPOST_EXCHANGE_CONNECTION_* settings. */
  const startCollector = async (connection: Record<string, string> = {}) => {
    await col?.stop();
    const c: Record<string, string> = {
      OUTPOST_EXCHANGE_MODE: 'connected',
      OUTPOST_EXCHANGE_CONNECTION_URL: upUrl,
      OUTPOST_EXCHANGE_CONNECTION_CA_FILE: ca.caFile,
      OUTPOST_EXCHANGE_CONNECTION_SYSTEM_CA: 'false',
      OUTPOST_EXCHANGE_RETRY_ATTEMPTS: '1',
      OUTPOST_SHUTDOWN_GRACE_SECONDS: '1',
      OUTPOST_HTTP_PORT: String(colPort),
    };
    for (const [k, v] of Object.entries(connection)) c[`OUTPOST_EXCHANGE_CONNECTION_${k}`] = v;
    col = await serve(dir, c);
  };
  const syncNow = (code = 0) => cliJson(['sync', 'now'], env, code);
  const inbound = () => readDb(join(dir, 'outpost.db'), (db) => (db.prepare("SELECT count(*) AS n FROM bundles WHERE direction = 'in'").get() as { n: number }).n);

  /** A failed sync changed nothing on either side: the same reports upstream, the same waiting, no response applied. */
  const expectNothingApplied = async (failing: () => Promise<any>) => {
    const before = { up: upstreamReportIds(upDir), acks: collectorAcks(dir), inbound: inbound() };
    const r = await failing();
    expect({ up: upstreamReportIds(upDir), acks: collectorAcks(dir), inbound: inbound() }).toEqual(before);
    expect(before.acks.pending).toBeGreaterThan(0);
    return r;
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    ca = makeTestCa();
    [upPort, colPort] = [await freePort(), await freePort()];
    upUrl = `https://127.0.0.1:${upPort}`;
    await startUpstream(ca.server);
    expect(up!.url).toBe(upUrl);
    await startCollector();
    proxy = await startConnectProxy({ auth: { username: 'site', password: 'proxy-secret' } });
  }, 60_000);
  afterAll(async () => {
    await col?.stop();
    await up?.stop();
    await proxy?.close();
  });

  it('when the collector trusts the CA, then it enrolls over the connection and a sync counts every report once upstream', async () => {
    const req = await cliJson(['sync', 'enroll', '--account', 'ACME'], env);
    expect(req).toMatchObject({ status: 'pending', upstream: upUrl, fingerprint: expect.any(String) });
    const pending = await cliJson(['upstream', 'collector', 'pending'], env);
    expect(pending).toEqual([expect.objectContaining({ collectorId: req.collectorId, fingerprint: req.fingerprint })]);
    const added = await cliJson(['upstream', 'collector', 'add', '--pending', req.collectorId, '--account', 'ACME', '--fingerprint', req.fingerprint, '--dir', upDir], env);
    expect(added.pinned).toBe(true);
    expect(await cliJson(['sync', 'enroll', 'confirm', '--fingerprint', added.upstreamFingerprint], env)).toMatchObject({ status: 'pinned' });
    await cliJson(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--name', 'DNA', '--quantity', '50'], env);

    fleet = await Fleet.register(col!.url, env, 3, 'TLS');
    await fleet.report('first');
    const r = await syncNow();
    expect(r).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);
    expect(collectorAcks(dir)).toEqual({ reports: 3, pending: 0, accepted: 3, rejected: 0 });
  }, 90_000);

  it('when the upstream presents a certificate for another name, or from a CA the collector does not trust, then the sync fails as tls and applies nothing', async () => {
    await fleet.report('second');
    await startUpstream(ca.otherName);
    const other = await expectNothingApplied(() => syncNow(1));
    expect(other).toMatchObject({ status: 'failed', error: { code: 'tls' } });
    expect(other.error.message).toMatch(/presented a certificate for .*upstream\.other\.example/);

    await startUpstream(ca.rogue);
    const rogue = await expectNothingApplied(() => syncNow(1));
    expect(rogue).toMatchObject({ status: 'failed', error: { code: 'tls' } });
    expect(rogue.error.message).toMatch(/no trusted certificate authority signed/);
    const status = await cliJson(['sync', 'status'], env);
    expect(status.lastError).toMatchObject({ code: 'tls' });
  }, 90_000);

  it("when the collector pins the server's key, then the sync works; with another pin it is refused naming both", async () => {
    await startUpstream(ca.server);
    await startCollector({ PIN_SHA256: ca.server.pin });
    expect(await syncNow()).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);

    await fleet.report('third');
    await startCollector({ PIN_SHA256: ca.rogue.pin });
    const r = await expectNothingApplied(() => syncNow(1));
    expect(r).toMatchObject({ status: 'failed', error: { code: 'tls' } });
    expect(r.error.message).toContain(`pin is ${ca.server.pin}`);
    expect(r.error.message).toContain(`pinSha256 is ${ca.rogue.pin}`);
  }, 90_000);

  it('when the collector goes through a CONNECT proxy with Basic authentication, then the right password file works and a wrong one fails as proxy', async () => {
    const secrets = join(dir, '..', 'secrets');
    mkdirSync(secrets, { recursive: true });
    const right = join(secrets, 'proxy-password');
    const wrong = join(secrets, 'proxy-password-wrong');
    writeFileSync(right, 'proxy-secret\n');
    writeFileSync(wrong, 'not-the-secret\n');
    chmodSync(right, 0o600);
    chmodSync(wrong, 0o600);
    const via = (file: string) => ({ PIN_SHA256: ca.server.pin, PROXY_URL: proxy.url, PROXY_USERNAME: 'site', PROXY_PASSWORD_FILE: file });

    await startCollector(via(right));
    expect(await syncNow()).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);
    expect(collectorAcks(dir)).toEqual({ reports: 9, pending: 0, accepted: 9, rejected: 0 });
    expect(proxy.targets.length).toBeGreaterThan(0);
    expect(new Set(proxy.targets)).toEqual(new Set([`127.0.0.1:${upPort}`]));
    expect(proxy.refused.auth).toBe(0);

    await fleet.report('fourth');
    await startCollector(via(wrong));
    const r = await expectNothingApplied(() => syncNow(1));
    expect(r).toMatchObject({ status: 'failed', error: { code: 'proxy' } });
    expect(r.error.message).toContain('407');
    expect(r.error.message).toContain(wrong);
    expect(proxy.refused.auth).toBeGreaterThan(0);

    // Healed: the same reports go up once, through the proxy.
    await startCollector(via(right));
    expect(await syncNow()).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);
    expect(collectorAcks(dir)).toEqual({ reports: 12, pending: 0, accepted: 12, rejected: 0 });
  }, 90_000);
});
