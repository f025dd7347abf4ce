import type { Services } from '../../src/services.js';
import { DAY_MS } from '../../src/shared/clock.js';

/** The day `n` days before the instant, on the UTC calendar, YYYY-MM-DD. */
export const daysBefore = (ms: number, n: number) => new Date(ms - n * DAY_MS).toISOString().slice(0, 10);

/**
 * The least-squares line written out again from its textbook formula, apart from the code
 * under test: x in whole days from the first day, y the day's value.
 */
export function expectedFit(ys: number[]) {
  const n = ys.length;
  const xs = ys.map((_, i) => i);
  const sx = xs.reduce((s, x) => s + x, 0);
  const sy = ys.reduce((s, y) => s + y, 0);
  const sxy = xs.reduce((s, x, i) => s + x * ys[i]!, 0);
  const sxx = xs.reduce((s, x) => s + x * x, 0);
  const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const intercept = (sy - slope * sx) / n;
  const mean = sy / n;
  const r2 = 1 - ys.reduce((s, y, i) => s + (y - (intercept + slope * i)) ** 2, 0) / ys.reduce((s, y) => s + (y - mean) ** 2, 0);
  return { slope, intercept, r2 };
}

/** Puts one value per day into the history, the last one on the day before `now`. */
export function seed(services: Services, vaId: string, tag: string, ys: number[], now: number, owned: number | null = null): string {
  const first = daysBefore(now, ys.length);
  services.history.repo.upsert(ys.map((y, i) => ({ va_id: vaId, tag, day: daysBefore(now, ys.length - i), in_use: y, owned, updated_at: now })));
  return first;
}
