import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Alert, AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { toIso } from '../shared/clock.js';
import { conflict } from '../shared/errors.js';
import { elapsedOf } from './monotonic.js';
import { readFloorFile, writeFloorFile } from './floor-file.js';
import { defaultTimeOptions, type TimeOptions } from './options.js';

export interface TimeCheck {
  systemTime: string;
  trustedTime: string;
  /** How far the system clock is below the floor (0 when it is not). */
  behindMs: number;
  /** How far the system clock is past the measured time while it is not believed (0 when believed). */
  aheadMs: number;
  systemClock: 'believed' | 'ahead' | 'behind';
}

export interface TimeStatus extends TimeCheck {
  floor: string;
  /** The last trusted reading plus the monotonic time elapsed since. */
  measuredTime: string;
  tolerances: { forwardSeconds: number; backwardsSeconds: number; maxDowntimeDays: number; agreementSeconds: number };
  alerts: Alert[];
}

/**
 * The time expiry checks use, and the floor under it: the highest time the collector trusts,
 * persisted, so setting the clock back cannot revive an expired token or entitlement.
 *
 * While running, time is measured: from the last trusted reading (the anchor) the monotonic
 * clock says how much time has passed, whatever anyone does to the wall clock. The system clock
 * is believed while it stays within the forward tolerance of that measure; a clock further ahead
 * is not believed (a `clock_forward` alert) until an operator confirms it or a verified upstream
 * time agrees with it, so one wrong jump can no longer raise the floor for good. A clock behind
 * the floor is not believed either (`clock_backwards`); the trusted time then keeps the
 * monotonic pace, so a clock set back does not stretch a token's life.
 *
 * Across a restart the elapsed time is lost, so a start re-anchors (see `anchorAtStart`).
 */
export class TrustedTime implements Clock {
  private floor: number;
  private persisted: number;
  private anchorWall = 0;
  private anchorElapsed = 0;
  private lastSystem = 0;
  private lastMeasured = 0;
  private aheadMs = 0;
  private upstreamAhead: number | null;
  private open: { backwards: boolean; forward: boolean; upstream: boolean };
  private opts: TimeOptions;
  private elapsed: () => number;
  private get;
  private put;

  constructor(
    db: Db,
    private clock: Clock,
    private alerts: AlertService,
    private events: EventService,
    options: number | TimeOptions,
    /** The floor's copy outside the database (floor-file.ts); none in unit tests of the clock alone. */
    private floorFile?: string,
  ) {
    this.opts = typeof options === 'number' ? { ...defaultTimeOptions, backwardsToleranceMs: options } : options;
    this.elapsed = elapsedOf(clock);
    this.get = db.prepare("SELECT value FROM meta WHERE key = 'time_floor'");
    this.put = db.prepare("INSERT INTO meta (key, value) VALUES ('time_floor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    const row = this.get.get() as { value: string } | undefined;
    // The higher of the database's floor and the file's: a database restored from an older
    // backup does not take the floor back with it.
    const inDb = row ? Number(row.value) : 0;
    this.floor = Math.max(inDb, floorFile ? readFloorFile(floorFile) : 0);
    this.persisted = inDb;
    // Alerts left open by an earlier run stay ours to clear; an unconfirmed forward clock stays unconfirmed.
    const upstream = this.openClockAlerts().find((a) => a.kind === 'clock_forward' && a.subject === 'upstream');
    this.upstreamAhead = upstream ? Date.parse(String(upstream.details.upstreamTime)) || null : null;
    this.open = {
      backwards: alerts.isOpen('clock_backwards', 'clock'),
      forward: alerts.isOpen('clock_forward', 'clock'),
      upstream: upstream !== undefined,
    };
    this.anchorAtStart(this.open.forward);
  }

  /**
   * The restart rule. The downtime is unknown, so the system clock is believed at start when it
   * is at or above the stored floor and no more than `maxDowntime` past it: a host that was off
   * for a week comes back with the right time and needs nobody. It is not believed when it is
   * further ahead than that, or when a forward jump was still unconfirmed at the last stop (a
   * restart must not launder it); the trusted time then starts from the floor and an operator
   * confirms the clock. A clock below the floor is handled as while running.
   */
  private anchorAtStart(forwardUnconfirmed: boolean): void {
    const sys = this.clock.now();
    const believed = this.floor === 0 || (!forwardUnconfirmed && sys >= this.floor && sys - this.floor <= this.opts.maxDowntimeMs);
    this.anchor(believed ? Math.max(sys, this.floor) : this.floor);
  }

  private anchor(wall: number, elapsed = this.elapsed()): void {
    this.anchorWall = wall;
    this.anchorElapsed = elapsed;
  }

  now(): number {
    const sys = this.clock.now();
    const elapsed = this.elapsed();
    const measured = this.anchorWall + (elapsed - this.anchorElapsed);
    let t: number;
    if (sys > measured + this.opts.forwardToleranceMs) {
      this.aheadMs = sys - measured;
      t = measured;
    } else {
      this.aheadMs = 0;
      if (sys >= this.floor) {
        t = sys;
        this.anchor(sys, elapsed);
      } else if (sys >= this.floor - this.opts.backwardsToleranceMs) {
        // A small step back (an NTP correction): wait for the clock rather than run ahead of it.
        t = this.floor;
        this.anchor(this.floor, elapsed);
      } else {
        t = measured;
      }
    }
    if (t > this.floor) this.floor = t;
    this.lastSystem = sys;
    this.lastMeasured = Math.max(measured, this.floor);
    return this.floor;
  }

  /**
   * A time from a verified upstream response (its signed creation time). One that agrees with
   * the system clock within the signature window vouches for it; an older one changes nothing;
   * one a little past the trusted time raises the floor; one far ahead of both is not believed
   * and raises an alert instead, so a bundle from the future cannot expire every license.
   */
  observeUpstreamTime(ms: number): void {
    if (!Number.isFinite(ms)) return;
    const now = this.now();
    const sys = this.lastSystem;
    if (Math.abs(ms - sys) <= this.opts.agreementWindowMs) {
      if (this.aheadMs > 0) {
        const old = this.floor;
        this.anchor(sys);
        this.floor = Math.max(this.floor, sys);
        this.aheadMs = 0;
        this.events.append('time.confirmed', 'upstream', 'clock', null, {
          by: 'upstream', upstreamTime: toIso(ms), systemTime: toIso(sys), oldFloor: toIso(old), newFloor: toIso(this.floor),
        });
      }
      this.upstreamAhead = null;
    } else if (ms <= now + this.opts.forwardToleranceMs) {
      if (ms > this.floor) {
        this.floor = ms;
        this.anchor(ms);
      }
    } else if (this.upstreamAhead === null || ms > this.upstreamAhead) {
      this.upstreamAhead = ms;
      this.events.append('time.upstream_ahead', 'upstream', 'clock', null, { upstreamTime: toIso(ms), trustedTime: toIso(now), systemTime: toIso(sys) });
    }
    this.check();
  }

  /** An operator says the system clock is right: it is believed again from here. */
  confirm(actor: string): TimeStatus {
    const sys = this.clock.now();
    this.now();
    if (sys < this.floor - this.opts.backwardsToleranceMs) {
      throw conflict(
        'clock_behind_floor',
        `the system clock (${toIso(sys)}) is behind the trusted floor (${toIso(this.floor)}); set the clock right, or if the floor is wrong, reset it with \`outpost time reset-floor --to <ISO time>\``,
        { systemTime: toIso(sys), floor: toIso(this.floor) },
      );
    }
    const old = this.floor;
    const aheadMs = this.aheadMs;
    this.anchor(sys);
    this.floor = Math.max(this.floor, sys);
    this.aheadMs = 0;
    this.upstreamAhead = null;
    this.events.append('time.confirmed', actor, 'clock', null, { by: 'operator', systemTime: toIso(sys), aheadMs, oldFloor: toIso(old), newFloor: toIso(this.floor) });
    this.check();
    return this.status();
  }

  /**
   * Sets the floor to a given time, down as well as up: the recovery for a floor that is already
   * wrong. The system clock is then judged against it as at a start.
   */
  resetFloor(to: number, actor: string): TimeStatus {
    const sys = this.clock.now();
    if (to > sys + this.opts.forwardToleranceMs) {
      throw conflict(
        'floor_ahead_of_clock',
        `the new floor (${toIso(to)}) is ahead of the system clock (${toIso(sys)}); set the system clock first, then run \`outpost time confirm\``,
        { to: toIso(to), systemTime: toIso(sys) },
      );
    }
    const old = this.floor;
    this.floor = to;
    // Written again even when the database already holds this value: the file may hold a higher one.
    this.persisted = Number.NaN;
    this.upstreamAhead = null;
    this.anchorAtStart(false);
    this.now();
    this.events.append('time.floor_reset', actor, 'clock', null, { oldFloor: toIso(old), newFloor: toIso(to), systemTime: toIso(sys), trustedTime: toIso(this.floor) });
    this.check();
    return this.status();
  }

  /** Compares the system clock with the measured time and the floor, keeps the alerts right, persists the floor. */
  check(): TimeCheck {
    const now = this.now();
    const sys = this.lastSystem;
    const behind = this.floor - sys;
    if (behind > this.opts.backwardsToleranceMs) {
      if (!this.open.backwards) {
        this.events.append('time.clock_backwards', 'system', 'clock', null, { systemTime: toIso(sys), trustedTime: toIso(now) });
      }
      this.alerts.raise('clock_backwards', {
        subject: 'clock',
        severity: 'critical',
        message: `the system clock is ${Math.round(behind / 1000)} s behind the highest trusted time; expiry checks use the trusted time`,
        details: { systemTime: toIso(sys), trustedTime: toIso(now) },
      });
      this.open.backwards = true;
    } else if (this.open.backwards) {
      this.alerts.clear('clock_backwards', 'clock');
      this.open.backwards = false;
    }
    if (this.aheadMs > 0) {
      if (!this.open.forward) {
        this.events.append('time.clock_forward', 'system', 'clock', null, { systemTime: toIso(sys), trustedTime: toIso(now), aheadMs: this.aheadMs });
      }
      this.alerts.raise('clock_forward', {
        subject: 'clock',
        severity: 'critical',
        message:
          `the system clock is ${Math.round(this.aheadMs / 1000)} s ahead of the time measured since the last trusted reading; ` +
          'expiry checks do not believe it until an operator runs `outpost time confirm` or a verified upstream time agrees',
        details: { systemTime: toIso(sys), trustedTime: toIso(now), aheadMs: this.aheadMs },
      });
      this.open.forward = true;
    } else if (this.open.forward) {
      this.alerts.clear('clock_forward', 'clock');
      this.open.forward = false;
    }
    if (this.upstreamAhead !== null && now >= this.upstreamAhead - this.opts.forwardToleranceMs) this.upstreamAhead = null;
    if (this.upstreamAhead !== null) {
      this.alerts.raise('clock_forward', {
        subject: 'upstream',
        severity: 'warning',
        message: `a verified upstream response was made at ${toIso(this.upstreamAhead)}, ahead of this collector's trusted time; it is not used for expiry: check both clocks`,
        details: { upstreamTime: toIso(this.upstreamAhead), trustedTime: toIso(now), systemTime: toIso(sys) },
      });
      this.open.upstream = true;
    } else if (this.open.upstream) {
      this.alerts.clear('clock_forward', 'upstream');
      this.open.upstream = false;
    }
    if (now !== this.persisted) {
      this.put.run(String(now));
      if (this.floorFile) writeFloorFile(this.floorFile, now);
      this.persisted = now;
    }
    return {
      systemTime: toIso(sys)!,
      trustedTime: toIso(now)!,
      behindMs: Math.max(0, behind),
      aheadMs: this.aheadMs,
      systemClock: this.aheadMs > 0 ? 'ahead' : behind > 0 ? 'behind' : 'believed',
    };
  }

  /** What `outpost time status` shows. */
  status(): TimeStatus {
    const c = this.check();
    return {
      ...c,
      floor: toIso(this.floor)!,
      measuredTime: toIso(this.lastMeasured)!,
      tolerances: {
        forwardSeconds: this.opts.forwardToleranceMs / 1000,
        backwardsSeconds: this.opts.backwardsToleranceMs / 1000,
        maxDowntimeDays: this.opts.maxDowntimeMs / 86_400_000,
        agreementSeconds: this.opts.agreementWindowMs / 1000,
      },
      alerts: this.openClockAlerts(),
    };
  }

  private openClockAlerts(): Alert[] {
    return (['clock_forward', 'clock_backwards'] as const).flatMap((kind) => this.alerts.list({ open: true, kind, limit: 10 }).items);
  }
}
