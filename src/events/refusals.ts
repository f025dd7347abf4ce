import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from './service.js';

/**
 * Refusals for security reasons (bad signatures, bad tokens, stale timestamps) are counted in
 * memory and written at most once per interval per reason, as one event that carries the count:
 * a flood of bad requests costs a counter increment each, and cannot fill the event log.
 */
export class RefusalCounter {
  private pending = new Map<string, { count: number; sample: Record<string, unknown> }>();
  private lastFlush = 0;
  private upsert;
  /** Told of each refusal as it is counted (the metrics). */
  observer: ((reason: string) => void) | null = null;

  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private intervalMs = 60_000,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO refusals (reason, count, last_at) VALUES (?, ?, ?)
       ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count, last_at = excluded.last_at`,
    );
  }

  count(reason: string, sample: Record<string, unknown>): void {
    this.observer?.(reason);
    const p = this.pending.get(reason);
    if (p) p.count++;
    else this.pending.set(reason, { count: 1, sample });
    if (this.clock.now() - this.lastFlush >= this.intervalMs) this.flush();
  }

  flush(): void {
    this.lastFlush = this.clock.now();
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.db.transaction(() => {
      for (const [reason, { count, sample }] of batch) {
        this.upsert.run(reason, count, this.lastFlush);
        this.events.append('security.refused', 'system', reason, null, { reason, count, sample });
      }
    })();
  }

  totals(): Record<string, number> {
    const rows = this.db.prepare('SELECT reason, count FROM refusals').all() as { reason: string; count: number }[];
    const out: Record<string, number> = Object.fromEntries(rows.map((r) => [r.reason, r.count]));
    for (const [reason, p] of this.pending) out[reason] = (out[reason] ?? 0) + p.count;
    return out;
  }
}
