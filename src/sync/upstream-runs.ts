import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Logger } from '../shared/logger.js';
import { nextCronRun } from '../time/zone.js';

export interface UpstreamRunsOptions<R> {
  /** Says what runs, in log lines: "sync", "Cisco cloud sync". */
  what: string;
  cron: string;
  timeZone: string;
  /** Scheduled runs and catch-up happen only when this is true (connected mode, configured). */
  scheduled: () => boolean;
  /** Throws, saying what is missing, when a run cannot start. */
  ready: () => void;
  /** One run, start to end; its failures are its result, not a rejection, where it can. */
  once: (actor: string, signal: AbortSignal) => Promise<R>;
  /** When the next scheduled run is due, kept in the store so a run missed while down runs at start. */
  due: { get(): number | null; set(at: number): void };
}

/**
 * How an exchange with an upstream is run, whatever the upstream: one run at a time (a second
 * caller joins the one running), on a cron schedule whose next due time is kept in the store,
 * a run missed while the collector was down made at start, and a stop that aborts the run's
 * waits and lets it finish cleanly. The Outpost sync and Cisco's cloud sync share it.
 */
export class UpstreamRuns<R> {
  private running: Promise<R> | null = null;
  private stopping = new AbortController();

  constructor(
    private db: Db,
    private clock: Clock,
    private logger: Logger,
    private o: UpstreamRunsOptions<R>,
  ) {}

  /** Aborted when the collector stops: a run's waits and retries end on it. */
  get signal(): AbortSignal {
    return this.stopping.signal;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Starts a run unless one runs; refuses at once, saying why, when it cannot start. */
  start(actor: string): { started: boolean } {
    if (this.running) return { started: false };
    this.o.ready();
    void this.run(actor).catch(() => {}); // its outcome is in the status
    return { started: true };
  }

  /** Runs, or joins the run under way. */
  run(actor: string): Promise<R> {
    if (this.running) return this.running;
    try {
      this.o.ready();
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.o.once(actor, this.stopping.signal).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  /** The scheduled run; records when the next one is due, whatever this one's outcome. */
  async scheduled(): Promise<R | null> {
    if (!this.o.scheduled()) return null;
    try {
      return await this.run('schedule');
    } finally {
      this.setDue();
    }
  }

  /** At start: a run missed while the collector was down runs now, in the background. */
  catchUp(): void {
    if (!this.o.scheduled()) return;
    const due = this.o.due.get();
    if (due === null || due > this.clock.now()) {
      this.setDue();
      return;
    }
    this.logger.info(`running the ${this.o.what} missed while the collector was down`, { due: toIso(due) });
    void this.scheduled().catch((e: unknown) => this.logger.warn(`the missed ${this.o.what} failed`, { error: (e as Error).message }));
  }

  /** Stops retrying and waiting; what a cut run left is taken up by the next one. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.idle();
  }

  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  private setDue(): void {
    const next = nextCronRun(this.o.cron, this.clock.now(), this.o.timeZone) ?? Number.MAX_SAFE_INTEGER;
    this.db.transaction(() => this.o.due.set(next))();
  }
}
