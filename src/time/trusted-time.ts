import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { toIso } from '../shared/clock.js';

/**
 * The highest trustworthy time the collector has seen, persisted. Expiry checks use
 * max(system clock, floor), so setting the clock back cannot revive an expired token or
 * entitlement; a clock found below the floor raises an alert instead of being believed.
 */
export class TrustedTime implements Clock {
  private floor: number;
  private alertOpen: boolean;
  private persisted: number;
  private get;
  private put;

  constructor(
    db: Db,
    private clock: Clock,
    private alerts: AlertService,
    private events: EventService,
    private toleranceMs: number,
  ) {
    this.get = db.prepare("SELECT value FROM meta WHERE key = 'time_floor'");
    this.put = db.prepare("INSERT INTO meta (key, value) VALUES ('time_floor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    const row = this.get.get() as { value: string } | undefined;
    this.floor = row ? Number(row.value) : 0;
    this.persisted = this.floor;
    // An alert left open by an earlier run stays ours to clear.
    this.alertOpen = alerts.isOpen('clock_backwards', 'clock');
  }

  now(): number {
    const sys = this.clock.now();
    if (sys > this.floor) this.floor = sys;
    return this.floor;
  }

  /** Raises the floor from a signed, trusted source (an upstream response, later). */
  raiseFloor(ms: number): void {
    if (ms > this.floor) this.floor = ms;
    this.check();
  }

  /** Compares the system clock with the floor, alerts when it went backwards, persists the floor. */
  check(): { systemTime: string; trustedTime: string; behindMs: number } {
    const sys = this.clock.now();
    const behind = this.floor - sys;
    if (behind > this.toleranceMs) {
      if (!this.alertOpen) {
        this.events.append('time.clock_backwards', 'system', 'clock', null, { systemTime: toIso(sys), trustedTime: toIso(this.floor) });
      }
      this.alerts.raise('clock_backwards', {
        subject: 'clock',
        severity: 'critical',
        message: `the system clock is ${Math.round(behind / 1000)} s behind the highest trusted time; expiry checks use the trusted time`,
        details: { systemTime: toIso(sys), trustedTime: toIso(this.floor) },
      });
      this.alertOpen = true;
    } else if (this.alertOpen) {
      this.alerts.clear('clock_backwards', 'clock');
      this.alertOpen = false;
    }
    const now = this.now();
    if (now !== this.persisted) {
      this.put.run(String(now));
      this.persisted = now;
    }
    return { systemTime: toIso(sys)!, trustedTime: toIso(now)!, behindMs: Math.max(0, behind) };
  }
}
