import { DAY_MS } from '../shared/clock.js';
import { zonedParts } from '../time/zone.js';

/** A calendar day, YYYY-MM-DD, as the history stores and the CLI takes it. */
export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

const pad = (n: number) => String(n).padStart(2, '0');

/** The day the instant falls on, on the zone's calendar. */
export function dayOf(ms: number, zone: string): string {
  const p = zonedParts(ms, zone);
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}

/**
 * Days counted on the calendar, not in elapsed milliseconds: a day of 23 or 25 hours (a DST
 * change) is still one step, so the fit's x axis has no kinks.
 */
export function dayNumber(day: string): number {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d) / DAY_MS;
}

export function dayFromNumber(n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

/** True for YYYY-MM-DD naming a day that exists (not 2026-02-30). */
export function isDay(s: string): boolean {
  return DAY_PATTERN.test(s) && dayFromNumber(dayNumber(s)) === s;
}
