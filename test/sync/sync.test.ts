import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import type { Clock } from '../../src/shared/clock.js';
import { tempDir } from '../helpers/temp.js';
import { enrollOver } from '../upstream/sync-server.js';
import { startReplyProxy, type ReplyProxy } from '../helpers/reply-proxy.js';

let h: Harness | undefined;
let up: RunningUpstream | undefined;
let relay: ReplyProxy | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  await h?.close();
  await up?.stop(0);
  h = up = undefined;
});

/** An upstream served on 127.0.0.1, and a collector in connected mode pointed at it, enrolled. */
async function connected(exchange: Record<string, unknown> = {}, clocks: { upstream?: Clock } = {}, via?: (upstreamPort: number) => Promise<string>, upstream: Record<string, unknown> = {}) {
  const dir = tempDir('sync');
  up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, host: '127.0.0.1', ...upstream }, shutdown: { graceSeconds: 1 } } }), {
    logger: createLogger('error', true),
    ...(clocks.upstream ? { clock: clocks.upstream } : {}),
  });
  h = await startHarness({
    config: { exchange: { mode: 'connected', connection: { url: via ? await via(up.port) : up.url }, retry: { attempts: 2, baseSeconds: 0.01, maxSeconds: 0.02 }, ...exchange } },
  });
  await enrollOver(h, up);
  up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 20, startsAt: 0, endsAt: null });
  return h;
}

const upstreamReports = () => (up!.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;

describe('a connected sync with an Outpost upstream', () => {
  it('when devices have reported, then one sync counts them upstream, brings back their ACKs and the entitlements, and the next sends nothing again', async () => {
    await connected();
    const d = await h!.registered();
    for (let i = 0; i < 3; i++) await d.sendReport(d.report(TAG, 4, undefined, `s${i}`));
    const r = await sync();
    expect(r).toMatchObject({ status: 'synced', parts: 1, reports: { sent: 3, accepted: 3, rejected: 0 }, error: null });
    expect(upstreamReports()).toBe(3);
    expect(h!.count('SELECT count(*) FROM report_pending')).toBe(0);
    const comp = (await h!.api.get(`/api/v1/virtual-accounts/${h!.defaultVa}/compliance`)).body.tags[0];
    expect(comp).toMatchObject({ status: 'in_compliance', owned: 20, inUse: 4 });
    expect((await d.send('GET', '/device/v1/acks', '')).body).toMatchObject({ pending: 0 });
    const s = (await h!.api.get('/api/v1/exchange/status')).body;
    expect(s).toMatchObject({ mode: 'connected', lastError: null, inFlight: null, waiting: { reports: 0, oldestSince: null }, lastSuccessAt: expect.any(String) });

    const again = await sync();
    expect(again).toMatchObject({ status: 'synced', parts: 1, reports: { sent: 0 } });
    expect(upstreamReports()).toBe(3);
  });

  it('when a backlog is larger than a part, then it goes up in consecutive parts, each answered before the next', async () => {
    await connected({ maxReportsPerPart: 4 });
    const d = await h!.registered();
    for (let i = 0; i < 10; i++) await d.sendReport(d.report(TAG, 1, undefined, `p${i}`));
    const r = await sync();
    expect(r).toMatchObject({ status: 'synced', parts: 3, reports: { sent: 10, accepted: 10 } });
    expect(upstreamReports()).toBe(10);
    const parts = h!.services.db.prepare("SELECT sequence, records FROM bundles WHERE direction = 'in' ORDER BY sequence").all();
    expect(parts.map((p: any) => p.records)).toEqual([4, 4, 2]);
  });

  it('when the backlog fills its last part exactly, then no empty part follows it', async () => {
    await connected({ maxReportsPerPart: 4 });
    const d = await h!.registered();
    for (let i = 0; i < 8; i++) await d.sendReport(d.report(TAG, 1, undefined, `e${i}`));
    expect(await sync()).toMatchObject({ status: 'synced', parts: 2, reports: { sent: 8, accepted: 8 } });
  });

  it('when a sync runs, then a second request joins it rather than starting another', async () => {
    await connected();
    const first = h!.services.sync.run('a');
    const second = (await h!.api.post('/api/v1/exchange/sync').send({}).expect(202)).body;
    expect(second).toEqual({ started: false });
    expect((await first).status).toBe('synced');
  });

  it("when the upstream's clock is further off than the signature window, then an alert says by how much, and the signed fetch it refuses is the sync's error in words", async () => {
    const ahead = 400_000;
    await connected({}, { upstream: { now: () => Date.now() + ahead } });
    const r = await sync();
    expect(r).toMatchObject({ status: 'failed', error: { code: 'bad_date' } });
    const alert = (await h!.api.get('/api/v1/alerts?kind=upstream_clock_skew')).body.items[0];
    expect(alert.message).toMatch(/the upstream's clock is 4\d\d s ahead of this collector's: more than the 300 s signature window/);
    expect((await h!.api.get('/api/v1/exchange/status')).body.lastError.message).toContain('from the upstream\'s clock');
  });

  it('when a scheduled sync was missed while the collector was down, then it runs at start, and the next one is stored', async () => {
    await connected({ syncCron: '0 * * * *' });
    h!.services.sync.catchUp(); // first start: nothing was due, the next run is stored
    const due = Date.parse((await h!.api.get('/api/v1/exchange/status')).body.nextRunAt);
    expect(due).toBeGreaterThan(Date.now());
    expect(h!.services.sync.status().lastAttemptAt).toBeNull();
    // As a restart finds it after the collector was down across the hour: the stored run is past.
    h!.services.db.prepare("UPDATE meta SET value = ? WHERE key = 'sync.next_due'").run(String(Date.now() - 60_000));
    h!.services.sync.catchUp();
    await h!.services.sync.idle();
    const s = h!.services.sync.status();
    expect(s.lastAttemptAt).not.toBeNull();
    expect(s.lastSuccessAt).not.toBeNull();
    expect(Date.parse(s.nextRunAt!)).toBeGreaterThan(Date.now());
  });

  it("when a web page comes back where the upstream's answer belongs, then it is a refused reply: nothing applied, an event, an alert, the reason in the status", async () => {
    await connected({}, {}, async (port) => (relay = await startReplyProxy(port)).url);
    relay!.hook = () => ({ body: Buffer.from('<html><body>Please sign in to the proxy</body></html>'), headers: { 'content-type': 'text/html' } });
    const d = await h!.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'html-1'));
    const r = await sync();
    expect(r).toMatchObject({ status: 'failed', error: { code: 'reply_refused' } });
    expect(h!.count("SELECT count(*) FROM events WHERE type = 'sync.reply_refused'")).toBe(1);
    expect((await h!.api.get('/api/v1/alerts?kind=sync_reply_refused')).body.items[0].message).toContain('text/html');
    expect(h!.count('SELECT count(*) FROM report_pending')).toBe(1);
    relay!.hook = null;
    expect(await sync()).toMatchObject({ status: 'synced', reports: { sent: 1 } });
    expect((await h!.api.get('/api/v1/alerts?kind=sync_reply_refused')).body.items).toHaveLength(0);
  });

  it('when the upstream refused a part in flight as a replay while it waited in its queue, then the part is dropped and its reports go in the next one', async () => {
    await connected();
    const d = await h!.registered();
    await d.sendReport(d.report(TAG, 2, undefined, 'queued-replay'));
    // A part posted before, whose job the upstream refused: a later bundle of this collector was
    // processed while it waited (a file export carried by hand, say).
    const p = await h!.services.exchange.exporter.export({ actor: 'test', part: { maxReports: 10, maxBytes: 1 << 20, devices: 'waiting' } });
    h!.services.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync.in_flight', ?)").run(
      JSON.stringify({ bundleId: p.bundleId, sequence: p.sequence, file: p.file, reports: p.reports, postedAt: Date.now() }),
    );
    up!.service.db
      .prepare("INSERT INTO sync_jobs (bundle_id, collector_id, sequence, hash, file, status, error_code, error_message, received_at) VALUES (?, ?, ?, ?, ?, 'failed', 'replay', 'refused as a replay', ?)")
      .run(p.bundleId, h!.services.identity.collectorId, p.sequence, p.hash, p.file, Date.now());
    const r = await sync();
    expect(r).toMatchObject({ status: 'synced', reports: { sent: 1, accepted: 1 } });
    expect(h!.count("SELECT count(*) FROM events WHERE type = 'sync.part_dropped'")).toBe(1);
    expect(upstreamReports()).toBe(1);
  });

  it('when the upstream refuses the part in flight for good (too large), then the part is dropped: the next sync builds a new one rather than posting the same file for ever', async () => {
    await connected({}, {}, undefined, { maxBundleBytes: 2000 });
    const d = await h!.registered();
    for (let i = 0; i < 40; i++) await d.sendReport(d.report(TAG, 1, undefined, `big-${i}`));
    const r = await sync();
    expect(r).toMatchObject({ status: 'failed', error: { code: 'too_large' } });
    const s = (await h!.api.get('/api/v1/exchange/status')).body;
    expect(s.inFlight).toBeNull();
    expect(s.waiting.reports).toBe(40);
    const dropped = h!.services.db.prepare("SELECT details FROM events WHERE type = 'sync.part_dropped'").pluck().all() as string[];
    expect(dropped.map((x) => JSON.parse(x).reason)).toEqual(['refused']);
  });

  it("when the upstream failed on its own side (a full disk), then posting the part again runs it again once the fault is gone, counting each report once", async () => {
    await connected();
    const d = await h!.registered();
    for (let i = 0; i < 3; i++) await d.sendReport(d.report(TAG, 1, undefined, `disk-${i}`));
    const outbox = join(up!.service.dataDir, 'outbox');
    rmSync(outbox, { recursive: true, force: true });
    writeFileSync(outbox, 'not a folder'); // every response the upstream writes fails, as on a full disk
    const failed = await sync();
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'processing_error' } });
    expect((await h!.api.get('/api/v1/exchange/status')).body.inFlight).not.toBeNull(); // kept: the fault is the upstream's
    rmSync(outbox);
    mkdirSync(outbox);
    expect(await sync()).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    expect(upstreamReports()).toBe(3);
  });

  it('when the collector starts, then parts built but never posted and answers never applied are removed, and the part in flight is kept', async () => {
    await connected();
    const d = await h!.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'tidy-1'));
    const bundles = h!.services.config.exchange.bundleDir;
    const held = await h!.services.exchange.exporter.export({ actor: 'test', part: { maxReports: 10, maxBytes: 1 << 20, devices: 'waiting' } });
    const orphan = await h!.services.exchange.exporter.export({ actor: 'test', part: { maxReports: 10, maxBytes: 1 << 20, devices: 'waiting' } });
    h!.services.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync.in_flight', ?)").run(
      JSON.stringify({ bundleId: held.bundleId, sequence: held.sequence, file: held.file, reports: held.reports, postedAt: null }),
    );
    mkdirSync(join(bundles, 'received'), { recursive: true });
    writeFileSync(join(bundles, 'received', 'response-to-seq000009.bundle.part'), 'half');
    h!.services.sync.tidy();
    expect(existsSync(held.file)).toBe(true);
    expect(existsSync(orphan.file)).toBe(false);
    expect(readdirSync(join(bundles, 'received'))).toEqual([]);
  });
});
