import { DAY_MS, toIso, type Clock } from '../shared/clock.js';
import { conflict } from '../shared/errors.js';
import { Pacer } from '../shared/pacer.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { GroupCommit } from '../usage/group-commit.js';
import { DESTINATIONS } from '../usage/destinations.js';

export interface RetentionOptions {
  /** retention.reportsDays: settled reports received longer ago are pruned; 0 keeps them for ever. */
  reportsDays: number;
  /** retention.batchSize: reports examined, and at most pruned, by one write. */
  batchSize: number;
}

export interface PruneResult {
  dryRun: boolean;
  /** False when retention.reportsDays is 0: nothing is ever pruned. */
  enabled: boolean;
  reportsDays: number;
  /** Reports received before this are old enough. */
  cutoff: string | null;
  /** Pruned (or, with dryRun, that would be), each leaving a tombstone. */
  pruned: number;
  device: number;
  rum: number;
  oldestReceivedAt: string | null;
  newestReceivedAt: string | null;
  batches: number;
  /** Old enough but kept: still some device's current measurement of a tag (the ledger points at it). */
  keptCurrent: number;
  tombstones: number;
  seconds: number;
}

interface Candidate {
  id: number;
  device_id: string;
  source: 'device' | 'rum';
  report_id: string;
  content_hash: string;
  measurement_count: number;
  received_at: number;
  current: number;
}

const IN_DESTINATIONS = `p.destination IN (${DESTINATIONS.map((d) => `'${d}'`).join(', ')})`;

/**
 * Retention of raw reports. A report is pruned once every destination has acknowledged it (no
 * wait left), it arrived more than reportsDays ago, and the ledger does not hold it as a
 * device's current measurement; a tombstone keeps its identity and content hash, so a replay is
 * answered as before. Its acknowledgements and the upload records that name it stay: they are
 * the history of what each destination took.
 *
 * The newest report is never pruned: SQLite gives a new row max(id)+1, and the destinations
 * know reports by that id, so removing the top row would hand its id to the next report.
 *
 * Each batch is one job of the ingest's group commit: short, on the connection that writes
 * reports (so a tombstone and the row it replaces never disagree for a concurrent report), its
 * fsync off the main thread. A pause three times as long as the batch took follows (at most
 * 150 ms), as the poller paces its stores: the prune then takes at most a quarter of the main
 * thread and of the disk. Its queries all go by rowid or primary key (EXPLAIN QUERY PLAN: the
 * window and the candidates search reports by rowid range, device_usage and report_pending by
 * their keys), so a batch's cost is its writes: a row and its unique-index entry removed, a
 * tombstone added, each on a page of its own when reports from many devices interleave.
 * bench:retention (100,000 reports, ingest at 500 reports/s): a batch of 500 held the main
 * thread 7 ms on average, 20 ms at p99, and each batch ran right after the pause of the last;
 * a batch of 100 held it 1.2 ms (median). 200 keeps a batch short and the prune's rate
 * reasonable (the commit's fsync is waited for once per batch).
 */
export class ReportPruner {
  private running = false;
  private window;
  private candidates;
  private tombstone;
  private remove;
  private top;
  private count;
  /** Told of each run that pruned (the metrics). */
  observer: ((r: PruneResult) => void) | null = null;

  constructor(
    db: Db,
    private time: Clock,
    private events: EventService,
    private commits: GroupCommit,
    private opts: RetentionOptions,
  ) {
    this.top = db.prepare('SELECT max(id) FROM reports').pluck();
    // The id that ends a window of batchSize reports after the cursor (null: fewer are left).
    this.window = db.prepare('SELECT id FROM reports WHERE id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?').pluck();
    this.candidates = db.prepare(
      `SELECT r.id, r.device_id, r.source, r.report_id, r.content_hash, r.measurement_count, r.received_at,
         EXISTS (SELECT 1 FROM device_usage u WHERE u.device_id = r.device_id AND u.report_pk = r.id) AS current
       FROM reports r
       WHERE r.id > ? AND r.id <= ? AND r.received_at < ?
         AND NOT EXISTS (SELECT 1 FROM report_pending p WHERE ${IN_DESTINATIONS} AND p.report_id = r.id)
       ORDER BY r.id`,
    );
    this.tombstone = db.prepare(
      `INSERT OR REPLACE INTO report_tombstones (device_id, source, report_id, report_pk, content_hash, measurement_count, received_at, pruned_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.remove = db.prepare('DELETE FROM reports WHERE id = ?');
    this.count = db.prepare('SELECT count(*) FROM report_tombstones').pluck();
  }

  get enabled(): boolean {
    return this.opts.reportsDays > 0;
  }

  async prune(o: { dryRun: boolean; actor: string }): Promise<PruneResult> {
    if (this.running) throw conflict('prune_running', 'a prune of old reports is already running; wait for it to finish');
    this.running = true;
    try {
      return await this.run(o);
    } finally {
      this.running = false;
    }
  }

  private async run(o: { dryRun: boolean; actor: string }): Promise<PruneResult> {
    const started = performance.now();
    const days = this.opts.reportsDays;
    const result: PruneResult = {
      dryRun: o.dryRun, enabled: days > 0, reportsDays: days, cutoff: null, pruned: 0, device: 0, rum: 0,
      oldestReceivedAt: null, newestReceivedAt: null, batches: 0, keptCurrent: 0, tombstones: 0, seconds: 0,
    };
    if (days > 0) {
      // Trusted time: a system clock set far ahead is not believed, so it cannot prune young reports.
      const cutoff = this.time.now() - days * DAY_MS;
      result.cutoff = toIso(cutoff);
      let oldest = Infinity;
      let newest = -Infinity;
      const top = (this.top.get() as number | null) ?? 0;
      const pacer = new Pacer(150, 3);
      let after = 0;
      while (after < top - 1) {
        const end = (this.window.get(after, top, this.opts.batchSize - 1) as number | undefined) ?? top - 1;
        const old = this.candidates.all(after, end, cutoff) as Candidate[];
        const batch = old.filter((c) => !c.current);
        result.keptCurrent += old.length - batch.length;
        after = end;
        if (!batch.length) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        const done = o.dryRun ? batch : await this.commits.submit(() => this.pruneBatch(batch));
        result.pruned += done.length;
        result.batches++;
        for (const c of done) {
          result[c.source]++;
          oldest = Math.min(oldest, c.received_at);
          newest = Math.max(newest, c.received_at);
        }
        await pacer.pause();
      }
      result.oldestReceivedAt = Number.isFinite(oldest) ? toIso(oldest) : null;
      result.newestReceivedAt = Number.isFinite(newest) ? toIso(newest) : null;
    }
    result.tombstones = this.count.get() as number;
    result.seconds = Math.round((performance.now() - started) / 10) / 100;
    if (!o.dryRun && result.pruned > 0) {
      const { dryRun: _d, enabled: _e, seconds: _s, ...details } = result;
      await this.commits.submit(() => this.events.append('reports.pruned', o.actor, null, null, details), { savepoint: false });
      this.observer?.(result);
    }
    return result;
  }

  /**
   * One batch, inside the group commit's transaction: each candidate is checked again there (a
   * grown RUM copy or a new wait may have come since it was read) and replaced by its tombstone.
   */
  private pruneBatch(batch: Candidate[]): Candidate[] {
    const now = this.time.now();
    const done: Candidate[] = [];
    for (const c of batch) {
      const still = this.candidates.get(c.id - 1, c.id, c.received_at + 1) as Candidate | undefined;
      if (!still || still.current || still.content_hash !== c.content_hash) continue;
      this.tombstone.run(c.device_id, c.source, c.report_id, c.id, c.content_hash, c.measurement_count, c.received_at, now);
      this.remove.run(c.id);
      done.push(c);
    }
    return done;
  }
}
