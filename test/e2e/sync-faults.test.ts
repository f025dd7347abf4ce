import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';
import { TAG } from '../helpers/harness.js';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { serveUpstream, type UpstreamProcess } from '../helpers/upstream-process.js';
import { CANNED, startFaultProxy, type FaultMode, type FaultProxy } from '../helpers/fault-proxy.js';
import { startReplyProxy, type ReplyProxy } from '../helpers/reply-proxy.js';
import { members, tarBytes } from '../helpers/tar-craft.js';
import { tempDir } from '../helpers/temp.js';

/**
 * The faults an operator meets between a collector and its upstream, one after another on one
 * pair of real processes: collector → TCP fault proxy → HTTP reply proxy → upstream. After each,
 * the sync has failed with words that say why, nothing was applied; once healed, the upstream
 * holds exactly what the devices reported and every report was acknowledged once.
 */
describe('a connected sync through network faults, against real processes', () => {
  const dir = tempDataDir();
  const upDir = join(dir, '..', 'upstream');
  let env: Record<string, string>;
  let upstream: UpstreamProcess;
  let upstreamPort: number;
  let collector: ServerProcess;
  let replies: ReplyProxy;
  let fault: FaultProxy;
  let faultPort: number;
  let devices: SimulatedDevice[];
  /** Every report id the devices sent, by UDI serial. */
  const sent = new Set<string>();

  const json = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const r = await cli([...args, '--json'], { ...env, ...extraEnv }, 60_000);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout);
  };
  const syncNow = async () => {
    const r = await cli(['sync', 'now', '--json'], env, 90_000);
    return { code: r.code, result: JSON.parse(r.stdout || 'null'), stderr: r.stderr };
  };
  const status = () => json(['sync', 'status']);

  /** Read-only looks at the two stores while their processes run. */
  const look = <T>(file: string, fn: (db: Database.Database) => T): T => {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  const collectorDb = <T>(fn: (db: Database.Database) => T) => look(join(dir, 'outpost.db'), fn);
  const upstreamDb = <T>(fn: (db: Database.Database) => T) => look(join(upDir, 'upstream.db'), fn);
  const n = (db: Database.Database, sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;

  const collectorState = () =>
    collectorDb((db) => ({
      pending: n(db, 'SELECT count(*) FROM report_pending'),
      acked: n(db, 'SELECT count(*) FROM report_acks'),
      imported: n(db, "SELECT count(*) FROM events WHERE type = 'exchange.imported'"),
      ackedByImports: (db.prepare("SELECT details FROM events WHERE type = 'exchange.imported'").pluck().all() as string[]).reduce(
        (sum, d) => sum + (JSON.parse(d) as { acks: { accepted: number } }).acks.accepted,
        0,
      ),
      refusedEvents: n(db, "SELECT count(*) FROM events WHERE type = 'sync.reply_refused'"),
      refusedAlertOpen: n(db, "SELECT count(*) FROM alerts WHERE kind = 'sync_reply_refused' AND cleared_at IS NULL"),
    }));
  const upstreamReports = () => upstreamDb((db) => db.prepare('SELECT udi, report_id FROM reports').all() as { udi: string; report_id: string }[]);

  /** Each device sends `perDevice` new reports, in batches the device API takes. */
  async function report(perDevice: number): Promise<void> {
    await Promise.all(
      devices.map(async (d) => {
        for (let done = 0; done < perDevice; ) {
          const batch = Array.from({ length: Math.min(1000, perDevice - done) }, () => d.report(TAG, 1 + (sent.size % 3)));
          const r = await d.sendBatch(batch);
          expect(r.status, JSON.stringify(r.body)).toBe(200);
          for (const x of batch) sent.add(`${d.udi.pid}:${d.udi.serial} ${x.reportId}`);
          done += batch.length;
        }
      }),
    );
  }

  /** The fault's sync: failed, with this code and words in its result and in the status; nothing of it applied on the collector. */
  async function failsWith(code: string, words: RegExp): Promise<void> {
    const before = collectorState();
    const r = await syncNow();
    expect(r.code, r.stderr).toBe(1);
    expect(r.result, JSON.stringify(r.result?.error)).toMatchObject({ status: 'failed', error: { code } });
    expect(r.result.error.message).toMatch(words);
    const s = await status();
    expect(s.lastError).toMatchObject({ code });
    expect(s.lastError.message).toMatch(words);
    const after = collectorState();
    expect({ pending: after.pending, acked: after.acked, imported: after.imported }).toEqual({ pending: before.pending, acked: before.acked, imported: before.imported });
    expect(s.waiting.reports).toBe(before.pending);
  }

  /** Heals: a sync that succeeds, then the totals on both sides, every report counted once and acknowledged once. */
  async function healed(): Promise<void> {
    const r = await syncNow();
    expect(r.code, `${JSON.stringify(r.result)} ${r.stderr}`).toBe(0);
    expect(r.result).toMatchObject({ status: 'synced', error: null });
    // The status as the store holds it (the CLI's reading of it is checked after each fault).
    const meta = collectorDb((db) => db.prepare("SELECT key FROM meta WHERE key IN ('sync.last_error', 'sync.in_flight')").pluck().all());
    expect(meta).toEqual([]);
    const up = upstreamReports();
    expect(up.length).toBe(sent.size);
    expect(new Set(up.map((x) => `${x.udi} ${x.report_id}`))).toEqual(sent);
    const c = collectorState();
    expect(c).toMatchObject({ pending: 0, acked: sent.size, ackedByImports: sent.size, refusedAlertOpen: 0 });
  }

  /** A bundle's manifest signed again by another upstream's key, naming that key: what a wrong or impostor upstream sends. */
  const signedByAnother = (body: Buffer): Buffer => {
    const file = join(tempDir('resign'), 'reply.opb');
    writeFileSync(file, body);
    const ms = members(file);
    const other = loadOrCreateIdentity(tempDir('other-upstream'), 'upstream').identity;
    const manifest = JSON.parse(ms[0]!.data.toString('utf8'));
    manifest.signer.keyId = other.fingerprint;
    manifest.collectorId = other.collectorId;
    ms[0]!.data = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    ms[1]!.data = other.signDetached(ms[0]!.data);
    return tarBytes(ms);
  };

  /** The fault's sync, for a reply the collector refuses: failed, an event and an open alert left, the reply kept aside. */
  async function refusedWith(words: RegExp): Promise<void> {
    const before = collectorState();
    await failsWith('reply_refused', words);
    const after = collectorState();
    expect(after.refusedEvents).toBe(before.refusedEvents + 1);
    expect(after.refusedAlertOpen).toBe(1);
  }

  const setFault = (m: FaultMode) => {
    fault.setMode(m);
    fault.dropConnections();
  };
  const heal = () => setFault({ kind: 'pass' });

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    upstream = await serveUpstream(upDir);
    upstreamPort = Number(new URL(upstream.url).port);
    replies = await startReplyProxy(upstreamPort);
    fault = await startFaultProxy(replies.port);
    faultPort = fault.port;
    env = {
      ...envFor(dir),
      OUTPOST_EXCHANGE_MODE: 'connected',
      OUTPOST_EXCHANGE_CONNECTION_URL: fault.url,
      OUTPOST_EXCHANGE_SYNC_CRON: '0 0 1 1 *',
      OUTPOST_EXCHANGE_RETRY_ATTEMPTS: '2',
      OUTPOST_EXCHANGE_RETRY_BASE_SECONDS: '0.05',
      OUTPOST_EXCHANGE_RETRY_MAX_SECONDS: '0.1',
      OUTPOST_EXCHANGE_CONNECTION_HEADERS_TIMEOUT_SECONDS: '1',
      OUTPOST_EXCHANGE_CONNECTION_CONNECT_TIMEOUT_SECONDS: '2',
    };
    collector = await serve(dir, env);
  }, 60_000);

  afterAll(async () => {
    await collector?.stop();
    await upstream?.stop();
    await fault?.close();
    await replies?.close();
  });

  // The cases run in order on one pair of processes, as an operator would meet the faults: each
  // starts from the healed state the one before left.
  it('when the collector enrolls over the connection and devices report, then a sync counts every report once', async () => {
    // Enrollment over the connection, both fingerprints confirmed.
    const req = await json(['sync', 'enroll', '--account', 'ACME']);
    expect(req.status).toBe('pending');
    const upId = await json(['upstream', 'init', '--dir', upDir]);
    await json(['upstream', 'collector', 'add', '--pending', req.collectorId, '--account', 'ACME', '--fingerprint', req.fingerprint, '--dir', upDir]);
    expect((await json(['sync', 'enroll', 'confirm', '--fingerprint', upId.fingerprint])).status).toBe('pinned');
    await json(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--name', 'DNA', '--quantity', '50', '--dir', upDir]);

    const token = (await json(['token', 'create', '--description', 'faults', '--uses', '3'])).secret;
    const collectorId = ((await (await request(`${collector.url}/device/v1/collector`)).body.json()) as { collectorId: string }).collectorId;
    devices = [0, 1, 2].map((i) => new SimulatedDevice(collector.url, collectorId, { pid: 'C9300-24T', serial: `FLT${i}` }));
    for (const d of devices) expect((await d.register(token)).status).toBe(201);
    await report(40);
    await healed();

  }, 90_000);

  it('when the upstream is stopped, or nothing listens where the collector points, then the sync fails saying so, and counts everything once when it is back', async () => {
    // The upstream stopped: the relay in front of it resets the connection.
    await report(5);
    await upstream.stop();
    await failsWith('cut', /reaching the upstream: the connection to .* was closed before a reply arrived.*after 2 attempts/);
    upstream = await serveUpstream(upDir, { OUTPOST_UPSTREAM_PORT: String(upstreamPort) });
    await healed();

    // Nothing listens where the collector points.
    await report(5);
    await fault.close();
    await failsWith('unreachable', /cannot reach the upstream at 127\.0\.0\.1:\d+: nothing listens there \(connection refused\).*after 2 attempts/);
    fault = await startFaultProxy(replies.port, '127.0.0.1', faultPort);
    await healed();

  }, 90_000);

  it('when a proxy answers 500 or 503, or an HTML error page, or the upstream answers slower than the timeout, then the sync fails saying so, and counts everything once when healed', async () => {
    // 500 and 503.
    await report(5);
    setFault({ kind: 'canned', response: CANNED.serverError });
    await failsWith('http', /answered 500 with error internal: boom/);
    setFault({ kind: 'canned', response: CANNED.unavailable(1) });
    await failsWith('http', /answered 503 with text\/plain "try later"/);
    heal();
    await healed();

    // A reply slower than the headers timeout.
    await report(5);
    setFault({ kind: 'delay', ms: 2500 });
    await failsWith('timeout', /did not answer within the headers timeout.*headersTimeoutSeconds 1 s/);
    heal();
    await healed();

    // An HTML error page from a proxy (502), and a portal's HTML page with 200.
    await report(5);
    setFault({ kind: 'canned', response: CANNED.htmlBadGateway });
    await failsWith('http', /answered 502 with an HTML page \("502 Bad Gateway"\), not an Outpost reply/);
    setFault({ kind: 'canned', response: CANNED.htmlOk });
    await failsWith('not_outpost', /answered 200 with text\/html.*check that the URL names an Outpost upstream|answered 200 with text\/html/);
    heal();
    await healed();

  }, 90_000);

  it('when the connection is cut in the middle of the usage bundle or of the response bundle, then the sync fails, and the next counts each report once', async () => {
    // The connection cut in the middle of the usage bundle: the upstream never had it.
    await report(100);
    const upBefore = upstreamReports().length;
    setFault({ kind: 'cutRequest', afterBytes: 1500 });
    await failsWith('cut', /uploading usage: the connection to .* was closed before a reply arrived/);
    expect(upstreamReports().length).toBe(upBefore);
    heal();
    await healed();

    // The connection cut in the middle of the response bundle, after the upstream counted the part.
    const replySize = replies.answers.at(-1)!.body.length;
    await report(100);
    setFault({ kind: 'cutResponse', afterBytes: 1000 + Math.floor(replySize / 2) });
    await failsWith('cut', /fetching the answer: the connection to .* was closed in the middle of its reply/);
    expect(upstreamReports().length).toBe(sent.size);
    expect(collectorState().pending).toBe(300);
    heal();
    await healed();

  }, 90_000);

  it('when the reply is signed by another upstream key, answers an earlier part, or is truncated, then it is refused and left on record, and the next sync applies the real one once', async () => {
    // A reply signed by another upstream's key.
    await report(5);
    replies.hook = (body) => ({ body: signedByAnother(body) });
    await refusedWith(/the upstream's answer to usage bundle \d+ was refused, nothing was applied: .*(bad_signature|unknown|not pinned)/);
    replies.hook = null;
    await healed();

    // An older reply (to an earlier part) served in answer to this one.
    await report(5);
    const older = replies.answers.at(-1)!.body;
    replies.hook = () => ({ body: older });
    await refusedWith(/the reply answers bun_[0-9a-z]+, not usage bundle bun_[0-9a-z]+ \(sequence \d+\) that was sent/);
    replies.hook = null;
    await healed();

    // A truncated reply, whole as HTTP (its length agrees).
    await report(5);
    replies.hook = (body) => ({ body: body.subarray(0, Math.floor(body.length * 0.6)) });
    await refusedWith(/refused/);
    replies.hook = null;
    await healed();

  }, 90_000);

  it('when the upstream is killed while it counts a large part, then it runs the part again on restart, and the next sync brings back its answer, every report counted once', async () => {
    // The upstream killed (SIGKILL) while it counts a large part, then started again on its port.
    await report(10_000);
    const before = collectorState();
    const syncing = syncNow();
    const jobs = new Database(join(upDir, 'upstream.db'), { readonly: true, fileMustExist: true });
    try {
      const processing = jobs.prepare("SELECT count(*) FROM sync_jobs WHERE status = 'processing'").pluck();
      const until = Date.now() + 60_000;
      while (processing.get() === 0) {
        expect(Date.now(), 'the upstream never started processing the part').toBeLessThan(until);
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      jobs.close();
    }
    await upstream.kill9();
    const killed = await syncing;
    expect(killed.code, killed.stderr).toBe(1);
    expect(killed.result).toMatchObject({ status: 'failed', error: { code: 'cut' } });
    expect(killed.result.error.message).toMatch(/fetching the answer: the connection to .* was closed before a reply arrived.*after 2 attempts/);
    const after = collectorState();
    expect({ pending: after.pending, acked: after.acked, imported: after.imported }).toEqual({ pending: before.pending, acked: before.acked, imported: before.imported });
    expect((await status()).lastError).toMatchObject({ code: 'cut' });
    upstream = await serveUpstream(upDir, { OUTPOST_UPSTREAM_PORT: String(upstreamPort) });
    // It was killed in the middle of the job: the new process runs it again.
    expect(upstream.log()).toMatch(/resuming queued sync jobs/);
    await healed();
  }, 90_000);
});
