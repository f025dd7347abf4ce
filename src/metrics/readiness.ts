import { readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/load.js';
import type { Db } from '../store/open.js';
import type { WalCheckpointState } from '../store/wal-checkpointer.js';

export interface ReadyCheck {
  ok: boolean;
  detail: string;
}

export interface ReadyState {
  ready: boolean;
  checks: { database: ReadyCheck; migrations: ReadyCheck; disk: ReadyCheck; signatureWorkers: ReadyCheck; walCheckpoints: ReadyCheck };
}

/** The free space of the file system holding a path: fs.statfsSync's two fields that give it. */
export type FreeSpaceReader = (path: string) => { bavail: number | bigint; bsize: number | bigint };

export interface ReadinessOptions {
  /** How the disk's free space is read: fs.statfsSync unless a test feeds it. */
  statfs?: FreeSpaceReader;
}

/** What the signature verifier says of its workers (the inline one has none, and is always able). */
export interface WorkerPool {
  alive?(): boolean;
}

/** The newest migration this build carries: the database must be at it to serve. */
export function latestMigration(dir = join(packageRoot, 'src/store/migrations')): number {
  return Math.max(0, ...readdirSync(dir).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).map((f) => Number(f.slice(0, 3))));
}

/**
 * Whether the collector can do its work now, for a load balancer or the service manager: the
 * store opens a write transaction, its schema is the one this build expects, the data folder's
 * disk has room, and the signature and WAL checkpoint workers are up. /healthz says the process answers; this
 * says it is worth sending devices to.
 */
export class Readiness {
  private workers: WorkerPool | null = null;
  private readonly latest = latestMigration();

  constructor(
    private readonly db: Db,
    private readonly dataDir: string,
    private readonly minFreeDiskMb: number,
    private readonly checkpoints?: { state(): WalCheckpointState },
    private readonly opts: ReadinessOptions = {},
  ) {}

  /** The verifier the device API uses (set where the request handler is built). */
  watchWorkers(pool: WorkerPool): void {
    this.workers = pool;
  }

  check(): ReadyState {
    const checks = { database: this.database(), migrations: this.migrations(), disk: this.disk(), signatureWorkers: this.signatureWorkers(), walCheckpoints: this.walCheckpoints() };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  private database(): ReadyCheck {
    if (!this.db.open) return { ok: false, detail: 'the database is closed' };
    // A group commit or another write in progress on this connection already proves it.
    if (this.db.inTransaction) return { ok: true, detail: 'open, a write in progress' };
    // Asked without waiting: a held lock must not stall the event loop for the busy timeout.
    const wait = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma('busy_timeout = 0');
    try {
      // Takes the write lock and gives it back: no row changes, nothing reaches the WAL.
      this.db.exec('BEGIN IMMEDIATE; ROLLBACK');
      return { ok: true, detail: 'open and writable' };
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return { ok: false, detail: `not writable: ${(e as Error).message}` };
    } finally {
      this.db.pragma(`busy_timeout = ${Number(wait)}`);
    }
  }

  private migrations(): ReadyCheck {
    try {
      const v = this.db.pragma('user_version', { simple: true }) as number;
      return v === this.latest
        ? { ok: true, detail: `at migration ${v}` }
        : { ok: false, detail: `the database is at migration ${v}; this version needs ${this.latest}` };
    } catch (e) {
      return { ok: false, detail: `cannot read the schema version: ${(e as Error).message}` };
    }
  }

  private disk(): ReadyCheck {
    try {
      const s = (this.opts.statfs ?? statfsSync)(this.dataDir);
      const freeMb = Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
      const say = `${freeMb} MB free in ${this.dataDir}; the floor is ${this.minFreeDiskMb} MB (ready.minFreeDiskMb)`;
      return { ok: freeMb >= this.minFreeDiskMb, detail: say };
    } catch (e) {
      return { ok: false, detail: `cannot read the free space of ${this.dataDir}: ${(e as Error).message}` };
    }
  }

  private signatureWorkers(): ReadyCheck {
    if (!this.workers?.alive) return { ok: true, detail: 'signatures are checked on the main thread' };
    return this.workers.alive()
      ? { ok: true, detail: 'alive' }
      : { ok: false, detail: 'the signature workers keep dying: checks run on the main thread, slowly' };
  }

  private walCheckpoints(): ReadyCheck {
    const st = this.checkpoints?.state();
    if (!st) return { ok: true, detail: 'checkpoints run as the collector commits' };
    if (st.gaveUp) return { ok: false, detail: st.gaveUp };
    if (st.by === 'owner') return { ok: true, detail: st.restarts ? 'the worker is being replaced; the collector checkpoints as it commits meanwhile' : 'checkpoints run as the collector commits' };
    return { ok: true, detail: st.lastAt === null ? 'a worker thread checkpoints' : `a worker thread checkpoints; the last at ${new Date(st.lastAt).toISOString()}` };
  }
}
