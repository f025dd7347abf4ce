import cron from 'node-cron';

/**
 * Calendar arithmetic in the collector's configured time zone (`time.zone`), never the host's:
 * the month a scheduled export covers and the moment its cron fires must be read on the same
 * calendar, or a collector east of UTC labels a bundle two months back.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** True for a name the runtime knows as an IANA time zone (or UTC). */
export function isTimeZone(name: string): boolean {
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

export interface ZonedParts {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export function zonedParts(ms: number, zone: string): ZonedParts {
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour!, minute: p.minute!, second: p.second! };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The month (YYYY-MM) that the instant falls in, on the zone's calendar. */
export function periodOf(ms: number, zone = 'UTC'): string {
  const p = zonedParts(ms, zone);
  return `${p.year}-${pad(p.month)}`;
}

/** The month before the one the instant falls in, on the zone's calendar. */
export function previousPeriod(ms: number, zone = 'UTC'): string {
  const p = zonedParts(ms, zone);
  return p.month === 1 ? `${p.year - 1}-12` : `${p.year}-${pad(p.month - 1)}`;
}

const asUtc = (p: ZonedParts) => Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);

/** The instant a wall-clock time in the zone names, or null when a DST gap skips it. */
export function zonedToInstant(p: ZonedParts, zone: string): number | null {
  const wall = asUtc(p);
  const offsetAt = (ms: number) => asUtc(zonedParts(ms, zone)) - ms;
  let t = wall - offsetAt(wall);
  const second = wall - offsetAt(t);
  if (second !== t) t = second;
  return asUtc(zonedParts(t, zone)) === wall ? t : null;
}

/** Eight years: enough for a 29 February that a weekday field restricts further. */
const MAX_DAYS = 8 * 366;

/**
 * The first instant strictly after `afterMs` that the cron expression matches in the zone, read
 * from a given time (a test clock, the trusted time) rather than the host's clock. Null when
 * nothing matches within eight years.
 */
export function nextCronRun(expression: string, afterMs: number, zone = 'UTC'): number | null {
  const fields = cron.parse(expression);
  const task = cron.createTask(expression, () => {}, { timezone: zone });
  try {
    const start = zonedParts(afterMs, zone);
    const startSecondOfDay = start.hour * 3600 + start.minute * 60 + start.second;
    days: for (let offset = 0; offset < MAX_DAYS; offset++) {
      const date = new Date(Date.UTC(start.year, start.month - 1, start.day + offset));
      for (const hour of fields.hour) {
        for (const minute of fields.minute) {
          for (const second of fields.second) {
            // Times well before the start on its first day cannot come after it (DST moves by 2 h at most).
            if (offset === 0 && hour * 3600 + minute * 60 + second < startSecondOfDay - 7200) continue;
            const at = zonedToInstant(
              { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate(), hour, minute, second }, zone,
            );
            if (at === null || at <= afterMs) continue;
            if (task.match(new Date(at))) return at;
            continue days; // the time fields match by construction, so it is the date that does not
          }
        }
      }
    }
    return null;
  } finally {
    void task.destroy();
  }
}
