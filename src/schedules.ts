import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from './shared/logger.js';

export interface Job {
  name: string;
  cron: string;
  /** A job may return a promise: its failure is logged like a thrown error, and runs never overlap. */
  run: () => void | Promise<unknown>;
}

/**
 * Scheduled jobs as a small table with start and stop. A failing run is logged, never fatal.
 * Cron fields are read in the configured time zone (`time.zone`), never the host's, so that the
 * monthly export fires on the same calendar its period is named in.
 */
export class Scheduler {
  private tasks: ScheduledTask[] = [];
  constructor(
    private jobs: Job[],
    private logger: Logger,
    private timeZone = 'UTC',
  ) {}

  start(): void {
    for (const job of this.jobs) {
      this.tasks.push(
        cron.schedule(job.cron, async () => {
          try {
            await job.run();
          } catch (e) {
            this.logger.error('scheduled job failed', { job: job.name, error: (e as Error).message });
          }
        }, { name: job.name, noOverlap: true, timezone: this.timeZone }),
      );
    }
  }

  stop(): void {
    for (const t of this.tasks) void t.stop();
    this.tasks = [];
  }
}
