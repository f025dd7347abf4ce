import type { Db } from '../store/open.js';
import { AppError } from '../shared/errors.js';

interface Job {
  work: () => unknown;
  savepoint: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: work submitted during one event-loop turn runs in a single transaction,
 * committed (and fsynced) once; every promise settles only after that commit. A job that may
 * throw after it has written runs in its own savepoint, so it rolls back alone and the others
 * still commit; a job that can only throw before its first write skips the savepoint's cost.
 */
export class GroupCommit {
  private queue: Job[] = [];
  /**
   * Set by the first failed WAL sync. After it, what SQLite's page cache holds may not be what
   * the disk holds, so a retried report could be answered "duplicate" without being durable:
   * every later job is refused until the process restarts and SQLite recovers the store.
   */
  private failure: AppError | null = null;
  private failureListeners: ((e: Error) => void)[] = [];
  private scheduled = false;
  /** Told of each commit that succeeded: how many jobs, and how long the WAL's fsync took (null without one). */
  observer: ((jobs: number, fsyncSeconds: number | null) => void) | null = null;
  private readonly runAll: (jobs: Job[]) => { ok: boolean; value: unknown }[];
  private readonly relaxed;
  private readonly strict;

  constructor(
    db: Db,
    /** Runs inside the shared transaction after the jobs, so derived state commits with them. */
    beforeCommit: () => void = () => {},
    /** If given, commits skip SQLite's own fsync and this one, off the main thread, stands in. */
    private readonly wal: (() => Promise<void>) | null = null,
  ) {
    this.relaxed = db.prepare('PRAGMA synchronous = NORMAL');
    this.strict = db.prepare('PRAGMA synchronous = FULL');
    const inSavepoint = db.transaction((work: () => unknown) => work()); // nested: a savepoint
    this.runAll = db.transaction((jobs: Job[]) => {
      const results = jobs.map((job) => {
        try {
          return { ok: true, value: job.savepoint ? inSavepoint(job.work) : job.work() };
        } catch (e) {
          return { ok: false, value: e };
        }
      });
      beforeCommit();
      return results;
    });
  }

  submit<T>(work: () => T, opts: { savepoint: boolean } = { savepoint: true }): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, savepoint: opts.savepoint, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs what is queued now. Also called at shutdown, so nothing queued is dropped. */
  flush(): void {
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    if (!jobs.length) return;
    let results: { ok: boolean; value: unknown }[];
    if (this.wal) this.relaxed.run();
    try {
      results = this.runAll(jobs);
    } catch (e) {
      // The commit itself failed (disk full, I/O error): nothing was written, nobody gets a 2xx.
      for (const j of jobs) j.reject(e);
      return;
    } finally {
      // Only group commits skip SQLite's fsync: every other write on this connection keeps it.
      if (this.wal) this.strict.run();
    }
    if (!this.wal) return (this.observer?.(jobs.length, null), settle(jobs, results));
    const syncStart = performance.now();
    this.wal().then(
      () => (this.observer?.(jobs.length, (performance.now() - syncStart) / 1000), settle(jobs, results)),
      (e: unknown) => {
        // Committed, but not known to be on disk: no 2xx, now or for a retry.
        const code = (e as { code?: string }).code ?? 'I/O error';
        const err = new AppError(503, 'storage_unavailable', `the collector could not make the request durable (${code}); retry later`);
        for (const j of jobs) j.reject(err);
        this.fail(e instanceof Error ? e : new Error(String(e)), code);
      },
    );
  }

  private fail(cause: Error, code: string): void {
    if (this.failure) return;
    this.failure = new AppError(
      503,
      'storage_failed',
      `the collector's storage failed (${code}) and it accepts no writes until it restarts; nothing was stored, retry later`,
    );
    for (const l of this.failureListeners) l(cause);
  }

  /** Called once, with the cause, when the first WAL sync fails. */
  onFailure(listener: (cause: Error) => void): void {
    this.failureListeners.push(listener);
  }

  /** The refusal every write gets after a failed sync, or null while storage is healthy. */
  get failed(): AppError | null {
    return this.failure;
  }

  get pending(): number {
    return this.queue.length;
  }
}

function settle(jobs: Job[], results: { ok: boolean; value: unknown }[]): void {
  for (let i = 0; i < jobs.length; i++) {
    const r = results[i]!;
    if (r.ok) jobs[i]!.resolve(r.value);
    else jobs[i]!.reject(r.value);
  }
}
