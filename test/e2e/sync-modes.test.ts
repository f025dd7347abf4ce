import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { serveUpstream, type UpstreamProcess } from '../helpers/upstream-process.js';
import { acksApplied, cliJson, collectorAcks, eventsOf, Fleet, freePort, readDb, upstreamReportIds } from '../helpers/sync-site.js';
import { TAG } from '../helpers/harness.js';

/**
 * An HTTP relay between the collector and the upstream that can refuse the fetch of an answer
 * (the connection dropped as the request arrives), so that a part is posted and processed
 * upstream but its answer never reaches the collector: the part stays in flight.
 */
async function startGate(targetPort: number): Promise<{ url: string; blockAnswers: boolean; close(): Promise<void> }> {
  const gate = {
    url: '',
    blockAnswers: false,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
  const server: Server = createServer((req, res) => {
    if (gate.blockAnswers && /\/usage\/[^/]+\/response/.test(req.url ?? '')) {
      req.socket.destroy();
      return;
    }
    const out = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  gate.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return gate;
}

/**
 * Switching between the air gap and connected mode, in both directions, with a bundle in
 * flight each way: the collector and `outpost upstream serve` as processes, the operator's
 * steps through the real CLI, and both stores read at the end of each step. One site lives
 * through every switch, so each step also starts from what the ones before it left.
 */
describe('switching exchange modes with a bundle in flight', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  const upDir = env.OUTPOST_UPSTREAM_DATA_DIR!;
  const inbox = join(env.OUTPOST_EXCHANGE_BUNDLE_DIR!, 'inbox');
  const rejected = join(env.OUTPOST_EXCHANGE_BUNDLE_DIR!, 'rejected');
  let up: UpstreamProcess;
  let col: ServerProcess | undefined;
  let gate: Awaited<ReturnType<typeof startGate>>;
  let fleet: Fleet;
  let colPort: number;

  const start = async (mode: 'connected' | 'disconnected', extra: Record<string, string> = {}) => {
    await col?.stop();
    col = await serve(dir, {
      OUTPOST_EXCHANGE_MODE: mode,
      OUTPOST_EXCHANGE_CONNECTION_URL: gate.url,
      OUTPOST_EXCHANGE_RETRY_ATTEMPTS: '2',
      OUTPOST_EXCHANGE_RETRY_BASE_SECONDS: '0',
      OUTPOST_EXCHANGE_INBOX_POLL_SECONDS: '1',
      OUTPOST_SHUTDOWN_GRACE_SECONDS: '1',
      OUTPOST_HTTP_PORT: String(colPort),
      ...extra,
    });
  };
  const outbound = () => readDb(join(dir, 'outpost.db'), (db) => (db.prepare("SELECT count(*) AS n FROM bundles WHERE direction = 'out' AND kind = 'usage'").get() as { n: number }).n);
  const status = () => cliJson(['sync', 'status'], env);

  /** The invariant after every step: the upstream counted each report once, and each was ACKed once. */
  const expectExact = () => {
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);
    const n = fleet.sent.length;
    expect(collectorAcks(dir)).toEqual({ reports: n, pending: 0, accepted: n, rejected: 0 });
    expect(acksApplied(dir)).toBe(n);
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    colPort = await freePort();
    up = await serveUpstream(upDir);
    gate = await startGate(Number(new URL(up.url).port));
    // The site starts on the air gap, enrolled by files as today.
    await start('disconnected');
    const req = await cliJson(['enroll', '--account', 'ACME'], env);
    const added = await cliJson(['upstream', 'collector', 'add', req.file, '--account', 'ACME', '--fingerprint', req.fingerprint], env);
    expect((await cliJson(['enroll', 'confirm', added.responseFile, '--fingerprint', added.upstreamFingerprint], env)).pinned).toBe(true);
    await cliJson(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--name', 'DNA', '--quantity', '50'], env);
    fleet = await Fleet.register(col!.url, env, 3, 'MODE');
  }, 30_000);
  afterAll(async () => {
    await col?.stop();
    await gate?.close();
    await up?.stop();
  });

  it('when a usage bundle was exported but never carried, then after the switch to connected the sync sends its reports, and the file carried late is refused upstream as a replay', async () => {
    await fleet.report('a1');
    const exported = await cliJson(['export'], env);
    expect(exported.reports).toBe(3);
    await fleet.report('a2');

    await start('connected');
    expect(await cliJson(['sync', 'now'], env)).toMatchObject({ status: 'synced', reports: { sent: 6, accepted: 6 } });
    expectExact();

    // The operator carries the old file anyway: the upstream has a later bundle, and refuses it.
    const late = await cli(['upstream', 'process', exported.file], env);
    expect(late.code, late.stdout).not.toBe(0);
    expect(late.stderr).toMatch(/replay/);
    expectExact();
  }, 45_000);

  it('when a usage bundle was processed upstream but its response not imported, then after the switch the sync settles its reports and the old response is refused from the inbox', async () => {
    await start('disconnected');
    await fleet.report('a3');
    const exported = await cliJson(['export'], env);
    const processed = await cliJson(['upstream', 'process', exported.file], env);
    expect(processed.reports).toMatchObject({ accepted: 3, new: 3 });

    await start('connected');
    expect(await cliJson(['sync', 'now'], env)).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expectExact();

    // The response arrives after the switch: it answers an export the sync has overtaken.
    const name = basename(processed.responseFile);
    copyFileSync(processed.responseFile, join(inbox, `.${name}`));
    renameSync(join(inbox, `.${name}`), join(inbox, name));
    await until(() => existsSync(join(rejected, name)), 20_000, `${name} moved to rejected/`);
    expect(readdirSync(inbox).filter((f) => !f.startsWith('.'))).toEqual([]);
    const refusal = eventsOf(dir, 'exchange.rejected').find((e) => e.subject === name);
    expect(refusal?.details.code).toMatch(/out_of_order|replay/);
    expectExact();
  }, 45_000);

  it('when a part is in flight (posted and processed, its answer never fetched), then the site can switch to the air gap, carry an export both ways, switch back, and the stale part is dropped', async () => {
    await fleet.report('b1');
    gate.blockAnswers = true;
    const failed = await cliJson(['sync', 'now'], env, 1);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'cut' } });
    const held = (await status()).inFlight;
    expect(held).toMatchObject({ reports: 3, postedAt: expect.any(String) });
    gate.blockAnswers = false;
    // The upstream counted the part it was given: only its answer was lost.
    expect(upstreamReportIds(upDir)).toEqual(fleet.expected);

    await start('disconnected');
    await fleet.report('b2');
    const exported = await cliJson(['export'], env);
    expect(exported.reports).toBe(6); // the part in flight was never answered: its reports still wait
    expect(exported.sequence).toBeGreaterThan(held.sequence);
    const processed = await cliJson(['upstream', 'process', exported.file], env);
    expect(processed.reports).toMatchObject({ accepted: 6, new: 3, alreadyCounted: 3 });
    expect(await cliJson(['import', processed.responseFile], env)).toMatchObject({ status: 'applied', acks: { accepted: 6 } });
    expectExact();

    await start('connected');
    expect(await cliJson(['sync', 'now'], env)).toMatchObject({ status: 'synced', reports: { sent: 0 } });
    expect((await status()).inFlight).toBeNull();
    const dropped = eventsOf(dir, 'sync.part_dropped');
    expect(dropped).toEqual([expect.objectContaining({ subject: held.bundleId, details: expect.objectContaining({ sequence: held.sequence, reason: 'overtaken' }) })]);
    expectExact();
  }, 45_000);

  it('when connected, then a monthly export due at start does not run and none runs on its schedule, while export by hand works and the inbox is still read', async () => {
    const markDue = () => {
      const db = new Database(join(dir, 'outpost.db'));
      try {
        db.prepare("INSERT INTO meta (key, value) VALUES ('exchange.next_export_due', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(Date.now() - 3_600_000));
      } finally {
        db.close();
      }
    };
    await col!.stop();
    col = undefined;
    markDue(); // the collector is stopped: the store is the test's for this one write
    const before = outbound();
    // Every second, too: in connected mode the schedule must not hold the export at all.
    await start('connected', { OUTPOST_EXCHANGE_EXPORT_CRON: '* * * * * *' });
    await fleet.report('c1');
    const byHand = await cliJson(['export'], env);
    expect(byHand.reports).toBe(3);
    const processed = await cliJson(['upstream', 'process', byHand.file], env);
    copyFileSync(processed.responseFile, join(inbox, basename(processed.responseFile)));
    await until(() => collectorAcks(dir).pending === 0, 20_000, 'the response in the inbox applied');
    expectExact();
    expect(outbound()).toBe(before + 1);
    expect(eventsOf(dir, 'exchange.exported').filter((e) => e.actor === 'schedule')).toEqual([]);

    // The same due export in disconnected mode runs at start: the check above could fail.
    await col!.stop();
    col = undefined;
    markDue();
    await start('disconnected');
    expect(eventsOf(dir, 'exchange.exported').filter((e) => e.actor === 'schedule')).toHaveLength(1);
  }, 45_000);
});

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
