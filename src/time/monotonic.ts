import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../shared/clock.js';

/** A clock that also reads elapsed time, which no one can set: the measure a wall clock is checked against. */
export interface MonotonicClock extends Clock {
  /** Milliseconds from an arbitrary origin; never goes back, unmoved by changes to the wall clock. */
  monotonic(): number;
}

const hasMonotonic = (c: Clock): c is MonotonicClock => typeof (c as Partial<MonotonicClock>).monotonic === 'function';

/**
 * Elapsed time for a clock: its own reading if it has one; the process's monotonic clock for
 * the system clock; for any other clock (a test's ManualClock), its own time, since advancing
 * such a clock stands for time passing.
 */
export function elapsedOf(clock: Clock): () => number {
  if (hasMonotonic(clock)) return () => clock.monotonic();
  if (clock === systemClock) return () => performance.now();
  return () => clock.now();
}

/**
 * A test clock whose wall time and elapsed time move apart: `advance` is time passing,
 * `jump` is someone (or NTP) setting the wall clock.
 */
export class ManualTime implements MonotonicClock {
  private elapsed = 0;
  constructor(private wall: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.elapsed;
  }
  advance(ms: number): void {
    if (ms < 0) throw new Error('time does not run backwards: use jump() to set the wall clock back');
    this.wall += ms;
    this.elapsed += ms;
  }
  jump(ms: number): void {
    this.wall += ms;
  }
  /** A restart: the process's elapsed time starts again from another origin. */
  restart(): void {
    this.elapsed = 0;
  }
}
