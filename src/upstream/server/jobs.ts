import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../shared/logger.js';
import { AppError } from '../../shared/errors.js';
import { readManifest } from '../../exchange/read.js';
import { processUsageBundle } from '../process.js';
import type { UpstreamService } from '../service.js';
import type { Serial } from './serial.js';

export type JobStatus = 'queued' | 'processing' | 'done' | 'failed';

export interface JobState {
  bundleId: string;
  collectorId: string;
  sequence: number;
  hash: string;
  status: JobStatus;
  errorCode: string | null;
  errorMessage: string | null;
}

interface JobRow {
  id: number;
  bundle_id: string;
  collector_id: string;
  sequence: number;
  hash: string;
  file: string;
  status: JobStatus;
  error_code: string | null;
  error_message: string | null;
}

const BUNDLE_ID = /^bun_[0-9a-z]+$/;
const fileName = (stamp: string, bundleId: string) => `${stamp}-${bundleId}.opb`;

/** fsync of a folder: a rename is durable only once the folder's entry is. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The durable queue of usage bundles posted to the upstream. A bundle is accepted (202) once
 * its verified file is renamed into jobs/: that file is the record, so the answer never waits
 * for the store, which a long job may hold for many seconds. Its sync_jobs row follows
 * through the write queue; a file without a row (the process died in between) gets one at
 * the next start. Jobs run one at a time in arrival order, by the same code as the CLI's
 * `upstream process`, which answers a bundle processed before with its earlier response: a
 * job interrupted by a crash is simply run again.
 */
export class SyncJobs {
  readonly dir: string;
  /** Accepted, their rows not yet written: what a fetch finds meanwhile. */
  private accepted = new Map<string, JobState>();
  private settled = new EventEmitter();
  private running: Promise<void> | undefined;
  private halted = false;
  private stamp = 0;

  constructor(
    private up: UpstreamService,
    private serial: Serial,
    private logger: Logger,
    dataDir: string,
  ) {
    this.dir = join(dataDir, 'jobs');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.settled.setMaxListeners(0);
  }

  /** Files accepted by a process that died before it wrote their rows: queued now, in arrival order. */
  async recover(): Promise<{ requeued: number; resumed: number }> {
    const { db } = this.up;
    const known = db.prepare('SELECT 1 FROM sync_jobs WHERE bundle_id = ?');
    let requeued = 0;
    for (const name of readdirSync(this.dir).sort()) {
      const bundleId = name.replace(/^\d+-/, '').replace(/\.opb$/, '');
      if (!BUNDLE_ID.test(bundleId) || known.get(bundleId)) continue;
      try {
        const { manifest: m, hash } = await readManifest(join(this.dir, name));
        this.insert({ bundleId: m.bundleId, collectorId: m.collectorId, sequence: m.sequence, hash, file: join(this.dir, name) });
        requeued++;
      } catch (e) {
        this.logger.error('an accepted bundle can no longer be read; it is left in place', { file: name, error: (e as Error).message });
      }
    }
    // A job that was running when the process died is run again; counting is idempotent.
    const resumed = db.prepare("UPDATE sync_jobs SET status = 'queued' WHERE status = 'processing'").run().changes;
    const queued = (db.prepare("SELECT count(*) AS n FROM sync_jobs WHERE status = 'queued'").get() as { n: number }).n;
    if (queued) this.logger.info('resuming queued sync jobs', { queued, requeued, resumed });
    return { requeued, resumed: queued };
  }

  private insert(j: { bundleId: string; collectorId: string; sequence: number; hash: string; file: string }): void {
    this.up.db
      .prepare("INSERT OR IGNORE INTO sync_jobs (bundle_id, collector_id, sequence, hash, file, status, received_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)")
      .run(j.bundleId, j.collectorId, j.sequence, j.hash, j.file, this.up.clock.now());
  }

  /**
   * A job that failed for a reason of the upstream's own (a full disk, an I/O error: anything but
   * a refusal of the bundle) runs again when its collector asks for it: stored as failed for
   * good, it refused that bundle for ever, and the collector's sync with it. Returns whether it was queued again.
   */
  retry(bundleId: string): boolean {
    const changed = this.up.db
      .prepare("UPDATE sync_jobs SET status = 'queued', error_code = NULL, error_message = NULL, finished_at = NULL WHERE bundle_id = ? AND status = 'failed' AND error_code = 'processing_error'")
      .run(bundleId).changes;
    if (changed) this.kick();
    return changed > 0;
  }

  /** Takes a verified bundle file (fsynced) into the queue: durable when this returns. */
  accept(tmpFile: string, j: { bundleId: string; collectorId: string; sequence: number; hash: string }): void {
    const stamp = `${String(Date.now()).padStart(15, '0')}${String(++this.stamp % 1e6).padStart(6, '0')}`;
    const file = join(this.dir, fileName(stamp, j.bundleId));
    renameSync(tmpFile, file);
    syncDir(this.dir);
    this.accepted.set(j.bundleId, { ...j, status: 'queued', errorCode: null, errorMessage: null });
    void this.serial
      .run(() => this.insert({ ...j, file }))
      .catch((e: unknown) => this.logger.error('could not record an accepted bundle; it runs at the next start', { bundle: j.bundleId, error: (e as Error).message }))
      .finally(() => this.accepted.delete(j.bundleId));
    this.kick();
  }

  /** What is known of a bundle's job: accepted or recorded. */
  state(bundleId: string): JobState | undefined {
    const a = this.accepted.get(bundleId);
    if (a) return a;
    const r = this.up.db.prepare('SELECT * FROM sync_jobs WHERE bundle_id = ?').get(bundleId) as JobRow | undefined;
    return r && { bundleId: r.bundle_id, collectorId: r.collector_id, sequence: r.sequence, hash: r.hash, status: r.status, errorCode: r.error_code, errorMessage: r.error_message };
  }

  /** Jobs ahead of this one (0: it runs next or now). */
  position(bundleId: string): number | undefined {
    const row = this.up.db.prepare("SELECT id FROM sync_jobs WHERE bundle_id = ? AND status IN ('queued', 'processing')").get(bundleId) as { id: number } | undefined;
    if (!row) return this.accepted.has(bundleId) ? this.counts().queued + this.counts().processing : undefined;
    return (this.up.db.prepare("SELECT count(*) AS n FROM sync_jobs WHERE id < ? AND status IN ('queued', 'processing')").get(row.id) as { n: number }).n;
  }

  counts(): Record<JobStatus, number> {
    const out: Record<JobStatus, number> = { queued: 0, processing: 0, done: 0, failed: 0 };
    for (const r of this.up.db.prepare('SELECT status, count(*) AS n FROM sync_jobs GROUP BY status').all() as { status: JobStatus; n: number }[]) out[r.status] = r.n;
    out.queued += this.accepted.size;
    return out;
  }

  /** Resolves when the bundle's job ends, when `ms` has passed, or when the upstream stops. */
  waitFor(bundleId: string, ms: number): Promise<void> {
    if (this.halted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.settled.off(bundleId, done);
        this.settled.off('halt', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.settled.once(bundleId, done);
      this.settled.once('halt', done);
    });
  }

  /** Starts the worker if it is not running: it takes jobs until none is queued. */
  kick(): void {
    if (this.running || this.halted) return;
    this.running = (async () => {
      try {
        while (!this.halted && (await this.serial.run(() => this.runNext()))) {
          /* next */
        }
      } finally {
        this.running = undefined;
      }
      // A bundle accepted while the last pass was ending has its row now: look once more.
      if (!this.halted && this.counts().queued > 0) this.kick();
    })();
  }

  /** Runs the oldest queued job; false when there is none. Called inside the write queue. */
  private async runNext(): Promise<boolean> {
    if (this.halted) return false;
    const { db } = this.up;
    const job = db.prepare("SELECT * FROM sync_jobs WHERE status = 'queued' ORDER BY id LIMIT 1").get() as JobRow | undefined;
    if (!job) return false;
    db.prepare("UPDATE sync_jobs SET status = 'processing' WHERE id = ?").run(job.id);
    try {
      const r = await processUsageBundle(this.up, job.file, { force: false });
      if (this.halted && !db.open) return false;
      db.prepare("UPDATE sync_jobs SET status = 'done', finished_at = ? WHERE id = ?").run(this.up.clock.now(), job.id);
      this.logger.info('usage bundle processed', { bundle: job.bundle_id, collector: job.collector_id, sequence: job.sequence, ...r.reports, response: r.responseSequence });
    } catch (e) {
      // Stopping cut it: it runs again at the next start, as after a crash.
      if (!db.open) return false;
      const known = e instanceof AppError;
      const code = known ? e.code : 'processing_error';
      const message = (e as Error).message;
      db.prepare("UPDATE sync_jobs SET status = 'failed', error_code = ?, error_message = ?, finished_at = ? WHERE id = ?").run(code, message, this.up.clock.now(), job.id);
      this.up.event('usage.refused', job.collector_id, { bundle: job.bundle_id, sequence: job.sequence, code, message });
      if (known) this.logger.warn('usage bundle refused', { bundle: job.bundle_id, code, message });
      else this.logger.error('usage bundle could not be processed', { bundle: job.bundle_id, error: message });
    }
    this.settled.emit(job.bundle_id);
    return true;
  }

  /** Stops taking jobs and answers every waiting fetch now; `idle` settles when the running job ends. */
  halt(): void {
    this.halted = true;
    this.settled.emit('halt');
  }

  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
