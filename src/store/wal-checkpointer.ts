import { Worker } from 'node:worker_threads';
import type { Logger } from '../shared/logger.js';
import { builtWorker } from '../shared/worker.js';
import type { Db } from './open.js';

/** SQLite's own default: a checkpoint by the committing connection once the WAL holds this many pages. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export interface WalCheckpointOptions {
  /** How often the worker checkpoints. */
  intervalMs: number;
  /** The worker is restarted when it has said nothing for this long (stuck), or has died. */
  stallMs: number;
  /** Deaths within `restartWindowMs` after which checkpoints go back to the owner's connection. */
  maxRestarts: number;
  restartWindowMs: number;
}

export const WAL_CHECKPOINT_DEFAULTS: WalCheckpointOptions = { intervalMs: 1000, stallMs: 30_000, maxRestarts: 5, restartWindowMs: 10 * 60_000 };

export interface WalCheckpointState {
  /** worker: a worker thread checkpoints; owner: the owner's commits do (SQLite's default), after the worker failed or before start. */
  by: 'worker' | 'owner';
  lastAt: number | null;
  /** Frames in the WAL and frames copied into the database at the last checkpoint. */
  walFrames: number | null;
  checkpointedFrames: number | null;
  restarts: number;
  /** Why checkpoints went back to the owner, once the worker kept failing. */
  gaveUp: string | null;
}

/**
 * WAL checkpoints off the main thread. SQLite's automatic checkpoint runs inside the commit that
 * crosses 1000 pages, on the connection that commits: here, the main thread that answers devices.
 * Under a write-heavy job (a prune, an import) that commit copies thousands of pages and fsyncs
 * the database file while every device waits (p99 140 ms against 12 ms with it off, in
 * bench:retention). So the owner's automatic checkpoint is turned off only once a worker thread,
 * with its own connection, is up and checkpointing every second; if that worker dies it is
 * replaced, if it stalls it is replaced, and if it keeps failing the owner's automatic
 * checkpoint comes back: the WAL never grows without bound.
 */
export class WalCheckpointer {
  /** Told of each checkpoint the worker made (the metrics' histogram). */
  observer: ((ms: number, walFrames: number, checkpointedFrames: number) => void) | null = null;
  private worker: Worker | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private heardAt = 0;
  private deaths: number[] = [];
  private stopping = false;
  private readonly st: WalCheckpointState = { by: 'owner', lastAt: null, walFrames: null, checkpointedFrames: null, restarts: 0, gaveUp: null };

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly logger: Logger,
    private readonly opts: WalCheckpointOptions = WAL_CHECKPOINT_DEFAULTS,
    private readonly workerUrl: URL | null = builtWorker(import.meta.url, './wal-checkpoint-worker.js'),
  ) {}

  state(): WalCheckpointState {
    return { ...this.st };
  }

  /** Resolves once the worker checkpoints (or, without a worker to run, at once: the owner keeps SQLite's). */
  start(): Promise<void> {
    if (!this.workerUrl) return Promise.resolve();
    this.watchdog = setInterval(() => this.watch(), Math.min(this.opts.stallMs, 5000));
    this.watchdog.unref();
    return this.spawn();
  }

  /** Stops the worker; the owner checkpoints again, and its close checkpoints what is left. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.toOwner();
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => void w.terminate().then(() => resolve()), 2000);
      w.once('exit', () => {
        clearTimeout(done);
        resolve();
      });
      w.postMessage({ kind: 'stop' });
    });
  }

  private spawn(): Promise<void> {
    return new Promise((resolve) => {
      const w = new Worker(this.workerUrl!, { workerData: { file: this.file, intervalMs: this.opts.intervalMs }, resourceLimits: { maxOldGenerationSizeMb: 16 } });
      this.worker = w;
      this.heardAt = Date.now();
      w.on('message', (m: { kind: string; at: number; ms: number; log: number; checkpointed: number }) => {
        this.heardAt = Date.now();
        if (m.kind === 'ready') {
          // From now on the worker's checkpoints are the only ones: the owner's commits only append.
          this.db.pragma('wal_autocheckpoint = 0');
          this.st.by = 'worker';
          resolve();
          return;
        }
        this.st.lastAt = m.at;
        this.st.walFrames = m.log;
        this.st.checkpointedFrames = m.checkpointed;
        this.observer?.(m.ms, m.log, m.checkpointed);
      });
      w.on('error', (e) => this.died(w, e.message));
      w.on('exit', (code) => {
        if (this.worker === w) this.died(w, `it exited with code ${code}`);
        resolve();
      });
    });
  }

  /** A worker silent for stallMs is stuck (a frozen disk, a bug): replaced as a dead one is. */
  private watch(): void {
    if (!this.worker || this.stopping) return;
    if (Date.now() - this.heardAt < this.opts.stallMs) return;
    const w = this.worker;
    this.died(w, `it said nothing for ${Math.round(this.opts.stallMs / 1000)} s`);
    void w.terminate();
  }

  private died(w: Worker, why: string): void {
    if (this.worker !== w || this.stopping) return;
    this.worker = null;
    this.toOwner();
    const now = Date.now();
    this.deaths = [...this.deaths.filter((t) => now - t < this.opts.restartWindowMs), now];
    if (this.deaths.length > this.opts.maxRestarts) {
      this.st.gaveUp = `the WAL checkpoint worker failed ${this.deaths.length} times in ${Math.round(this.opts.restartWindowMs / 60_000)} min (last: ${why}); the collector checkpoints as it commits`;
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
      this.logger.error('WAL checkpoints run on the main thread again: the worker keeps failing', { reason: why });
      return;
    }
    this.st.restarts++;
    this.logger.warn('the WAL checkpoint worker stopped and is replaced', { reason: why });
    void this.spawn();
  }

  /** Until a worker is up again, the owner's commits checkpoint as SQLite does by default. */
  private toOwner(): void {
    this.st.by = 'owner';
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
  }
}
