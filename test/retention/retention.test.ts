import { afterEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { ManualClock } from '../../src/shared/clock.js';
import { loadConfig, ConfigError, packageRoot } from '../../src/config/load.js';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { migrate } from '../../src/store/migrate.js';
import { tempDir } from '../helpers/temp.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** What an upstream's ACK does to the reports it answers (the exchange import's two writes). */
function settleAll(x: Harness): void {
  const db = x.services.db;
  db.transaction(() => {
    db.prepare("INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at) SELECT destination, report_id, 'accepted', NULL, ? FROM report_pending").run(x.clock!.now());
    db.prepare('DELETE FROM report_pending').run();
  })();
}

const compliance = (x: Harness) => JSON.stringify(x.services.licenses.complianceAll());
const prune = async (x: Harness, dryRun = false) => (await x.api.post('/api/v1/reports/prune').send({ dryRun }).expect(200)).body;

describe('retention of raw reports', () => {
  it('prunes only settled old reports that are no current measurement, keeps compliance, records one event, and a tombstone answers replays as the row did', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    const d = await h.registered();
    const t = Math.floor(clock.now() / 1000);
    const old1 = d.report(TAG, 3, t - 7200, 'old-1');
    const old2 = d.report(TAG, 5, t - 3600, 'old-2'); // the current measurement of TAG: kept
    const other = d.report(TAG2, 2, t - 3600, 'other-1'); // the current measurement of TAG2: kept
    for (const r of [old1, old2, other]) expect((await d.sendReport(r)).status).toBeLessThan(300);
    h.services.history.sample(); // the first day of usage history, from the reports about to be pruned
    settleAll(h);
    clock.advance(401 * DAY);
    const t2 = Math.floor(clock.now() / 1000);
    const waiting = d.report(TAG, 6, t2 - 60, 'new-waiting'); // recent and unsettled
    expect((await d.sendReport(waiting)).status).toBeLessThan(300);
    // old2 is no longer current once `waiting` measured TAG later: it may go now.
    const before = compliance(h);
    h.services.history.sample();
    const history = async () => (await h!.api.get('/api/v1/usage/history').query({ vaId: h!.defaultVa }).expect(200)).body.items;
    const historyBefore = await history();
    expect(historyBefore).toEqual([
      expect.objectContaining({ tag: TAG2, inUse: 2 }), expect.objectContaining({ tag: TAG2, inUse: 2 }), expect.objectContaining({ tag: TAG, inUse: 5 }), expect.objectContaining({ tag: TAG, inUse: 6 }),
    ]);
    // A signed checkpoint of the trail before the prune: the prune must add to the trail, never rewrite it.
    await h.api.post('/api/v1/events/checkpoints').send({}).expect((r) => expect(r.status).toBeLessThan(300));

    const dry = await prune(h, true);
    expect(dry).toMatchObject({ dryRun: true, pruned: 2, device: 2, rum: 0, keptCurrent: 1, tombstones: 0 });
    expect(h.count('SELECT count(*) FROM reports')).toBe(4);

    const run = await prune(h);
    expect(run).toMatchObject({ dryRun: false, pruned: 2, device: 2, batches: 1, keptCurrent: 1, tombstones: 2, reportsDays: 400 });
    const left = h.services.db.prepare('SELECT report_id FROM reports ORDER BY id').pluck().all();
    expect(left).toEqual(['other-1', 'new-waiting']);
    expect(compliance(h)).toBe(before);
    const events = h.services.db.prepare("SELECT details FROM events WHERE type = 'reports.pruned'").pluck().all() as string[];
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!)).toMatchObject({ pruned: 2, device: 2, rum: 0, batches: 1, oldestReceivedAt: expect.any(String), newestReceivedAt: expect.any(String) });
    // The trail still chains and matches the checkpoint signed before the prune (what `outpost events verify` checks).
    const trail = (await h.api.get('/api/v1/events/verify').expect(200)).body;
    expect(trail).toMatchObject({ intact: true, firstBrokenId: null, finding: null, checkpoints: { checked: 1, matched: 1 } });
    // The usage history is that of before, also sampled again after the prune.
    h.services.history.sample();
    expect(await history()).toEqual(historyBefore);

    // Replays of pruned reports: the same content is a duplicate, other content a reused id.
    const replay = await d.sendReport(old1);
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ status: 'duplicate' });
    const changed = await d.sendReport({ ...old1, measurements: [{ ...old1.measurements[0]!, count: 9 }] });
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('report_id_reused');
    const batch = await d.sendBatch([old2, d.report(TAG, 7, t2 - 30, 'fresh')]);
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: { status: string }) => r.status)).toEqual(['duplicate', 'accepted']);
    expect(h.count("SELECT count(*) FROM reports WHERE report_id IN ('old-1', 'old-2')")).toBe(0);

    // Nothing left to prune: a second run removes nothing and writes no event.
    expect(await prune(h)).toMatchObject({ pruned: 0, tombstones: 2 });
    expect(h.count("SELECT count(*) FROM events WHERE type = 'reports.pruned'")).toBe(1);
  });

  it('a RUM report that grew after its older copy was pruned is that report grown (replaced, under its old id), never a new one, and in-use is unchanged', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    const t = Math.floor(clock.now() / 1000);
    const spec = (reportId: number, ends: number[]) =>
      rumElement({ pid: 'C9300-48P', serial: 'RUMX1', reportId, tag: TAG, measurements: ends.map((end, i) => ({ start: end - 600, end, count: 4 + i })) });
    const opts = (now: number) => ({ vaId: h!.defaultVa, actor: 'test', skipInvalid: false, maxElements: 10, maxFutureSkewMs: DAY, staleAfterDays: Math.ceil((now - t * 1000) / DAY) + 90 });
    const first = await h.services.rum.import(Buffer.from(smartLicense(spec(1, [t - 7200, t - 6600]), spec(2, [t - 3600]))), opts(clock.now()));
    expect(first).toMatchObject({ accepted: 2 });
    const pk = h.services.db.prepare("SELECT id FROM reports WHERE report_id LIKE '%:1'").pluck().get() as number;
    settleAll(h);
    clock.advance(401 * DAY);
    const inUse = compliance(h);
    expect(await prune(h)).toMatchObject({ pruned: 1, rum: 1 }); // report 2, the newest row, is never pruned

    const again = await h.services.rum.import(Buffer.from(smartLicense(spec(1, [t - 7200, t - 6600]))), opts(clock.now()));
    expect(again).toMatchObject({ duplicate: 1, accepted: 0, replaced: 0 });
    const shorter = await h.services.rum.import(Buffer.from(smartLicense(spec(1, [t - 7200]))), opts(clock.now()));
    expect(shorter).toMatchObject({ superseded: 1, accepted: 0 });
    const grown = await h.services.rum.import(Buffer.from(smartLicense(spec(1, [t - 7200, t - 6600, t - 6000]))), opts(clock.now()));
    expect(grown).toMatchObject({ replaced: 1, accepted: 0 });
    // The same row id as before: to the destinations it is the same report, grown, waiting again.
    expect(h.services.db.prepare("SELECT id FROM reports WHERE report_id LIKE '%:1'").pluck().get()).toBe(pk);
    expect(h.count('SELECT count(*) FROM report_pending WHERE report_id = ?', pk)).toBe(h.services.destinations.forSource('rum').length);
    expect(h.count('SELECT count(*) FROM report_tombstones')).toBe(0);
    expect(compliance(h)).toBe(inUse);
  });

  it('a store without the tombstones table gets it from migration 019, and a bad retention.reportsDays is named', async () => {
    const dir = tempDir('retention-019');
    const all = join(packageRoot, 'src/store/migrations');
    const upTo18 = join(dir, 'up-to-18');
    mkdirSync(upTo18);
    for (const f of readdirSync(all).filter((f) => f < '019')) copyFileSync(join(all, f), join(upTo18, f));
    const db = openStore(join(dir, 'outpost.db'), { migrationsDir: upTo18 });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(18);
      db.prepare("INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json) VALUES ('dev_1', 'device', 'r-1', 1, 1, 1, 'h', '{}', 1, '[]')").run();
      migrate(db);
      expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(19);
      expect(db.prepare('SELECT count(*) FROM report_tombstones').pluck().get()).toBe(0);
      expect(db.prepare('SELECT report_id FROM reports').pluck().all()).toEqual(['r-1']);
    } finally {
      db.close();
    }
    expect(() => loadConfig({ env: { OUTPOST_RETENTION_REPORTS_DAYS: '-3' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { OUTPOST_RETENTION_REPORTS_DAYS: '-3' } })).toThrow(/retention\.reportsDays.*0 or more/);
    expect(() => loadConfig({ env: { OUTPOST_RETENTION_REPORTS_DAYS: '1.5' } })).toThrow(/retention\.reportsDays.*whole number/);
    expect(loadConfig({ env: {} }).retention.reportsDays).toBe(400);
  });

  it('with retention.reportsDays 0 nothing is pruned', async () => {
    const clock = new ManualClock(Date.now());
    h = await startHarness({ clock, config: { retention: { reportsDays: 0 } } });
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 1, undefined, 'k-1'));
    await d.sendReport(d.report(TAG, 2, Math.floor(clock.now() / 1000) + 1, 'k-2'));
    settleAll(h);
    clock.advance(5000 * DAY);
    expect(await prune(h)).toMatchObject({ enabled: false, pruned: 0 });
    expect(h.count('SELECT count(*) FROM reports')).toBe(2);
  });
});
