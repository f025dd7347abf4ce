import { dayNumber } from './days.js';

/** One day of history: the day and the highest in-use seen on it. */
export interface DailyValue {
  day: string;
  inUse: number;
}

/** A straight line through the daily values, and how well it fits. */
export interface LinearFit {
  /** Licenses gained per day. */
  slopePerDay: number;
  /** The fitted in-use on `origin` (x = 0). */
  intercept: number;
  /** Share of the day-to-day variation the line explains (0..1); null when every day has the same value. */
  r2: number | null;
  /** Days with a value that the fit used. */
  days: number;
  /** The day x counts from: the first day used. */
  origin: string;
  /** The last day used. */
  to: string;
}

/**
 * Ordinary least squares of in-use (y) on the day (x, whole calendar days from the first day
 * used). Chosen over anything cleverer because an operator can check it by hand or in a
 * spreadsheet (SLOPE, INTERCEPT, RSQ give the same numbers): the forecast is an extrapolation of
 * the recent trend, not a model of the site, and it says so by showing the fit. Days without a
 * value (the collector was down) are simply absent, not zeros.
 *
 *   slope = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²      intercept = ȳ − slope·x̄
 *   r²    = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²
 */
export function fitLine(values: DailyValue[]): LinearFit | null {
  if (values.length < 2) return null;
  const sorted = [...values].sort((a, b) => (a.day < b.day ? -1 : 1));
  const x0 = dayNumber(sorted[0]!.day);
  const xs = sorted.map((v) => dayNumber(v.day) - x0);
  const ys = sorted.map((v) => v.inUse);
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i]! - (intercept + slope * xs[i]!)) ** 2;
  return { slopePerDay: slope, intercept, r2: syy === 0 ? null : 1 - sse / syy, days: n, origin: sorted[0]!.day, to: sorted[n - 1]!.day };
}

/**
 * The first day on which the trend line is above the owned quantity, i.e. a shortage by the
 * compliance rule (in use greater than owned): x = floor((owned − intercept) / slope) + 1 days
 * after the origin, as a day number (see dayNumber). Only for a rising line.
 */
export function crossingDayNumber(fit: LinearFit, owned: number): number {
  return dayNumber(fit.origin) + Math.floor((owned - fit.intercept) / fit.slopePerDay) + 1;
}
