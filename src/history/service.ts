import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AccountService } from '../accounts/service.js';
import type { AlertService, AlertSpec } from '../alerts/service.js';
import type { LicenseService } from '../licenses/service.js';
import { badRequest } from '../shared/errors.js';
import { HistoryRepository } from './repository.js';
import { dayFromNumber, dayNumber, dayOf, isDay } from './days.js';
import { crossingDayNumber, fitLine, type LinearFit } from './forecast.js';

export interface HistoryOptions {
  /** The calendar days are read on (time.zone). */
  zone: string;
  /** How many complete days the fit looks back over. */
  windowDays: number;
  /** Fewer days with a value than this: no forecast. */
  minDays: number;
  /** A crossing this many days ahead or fewer raises shortage_forecast. */
  alertDays: number;
}

export interface HistoryDay {
  day: string;
  tag: string;
  inUse: number;
  owned: number | null;
}

export interface UsageHistoryList {
  vaId: string;
  vaName: string;
  since: string;
  until: string;
  items: HistoryDay[];
}

export type NoForecastCode = 'unlimited' | 'not_owned' | 'already_short' | 'too_few_days' | 'not_growing' | 'too_far';

export interface UsageForecast {
  vaId: string;
  vaName: string;
  tag: string;
  displayName: string;
  /** Owned now; null means unlimited. */
  owned: number | null;
  /** In use now. */
  inUse: number;
  /** The line through the last windowDays complete days; null with fewer than two days. */
  fit: LinearFit | null;
  /** The first day the trend is above what is owned (see crossingDayNumber). */
  crossingDate: string | null;
  /** Days from today to the crossing (0 or less: the trend is there already). */
  daysAhead: number | null;
  noForecast: { code: NoForecastCode; message: string } | null;
}

/** Beyond this a crossing says only "not soon"; it also keeps the date arithmetic in range. */
const HORIZON_DAYS = 3650;

/**
 * The usage history and the shortage forecast drawn from it.
 *
 * A day's value is the highest in-use seen that day, taken by a sampler (every few minutes,
 * at start and at stop; see main.ts) that reads the in-use counters, never by the ingest path:
 * recording costs the devices nothing, and a peak of the day is what a shortage is about (the
 * portal counts the highest use, not the use at midnight). A snapshot at the day's end would
 * need the collector up at that moment, and be lost when it is not; a running maximum is right
 * from the first sample of the day and only gets better. Its price: a peak shorter than the
 * sampling interval can be missed. Days are read in the site's time zone from the trusted time,
 * so setting the host's clock back cannot rewrite a past day.
 */
export class UsageHistory {
  readonly repo: HistoryRepository;

  constructor(
    db: Db,
    private time: Clock,
    private accounts: AccountService,
    private licenses: LicenseService,
    private alerts: AlertService,
    private opts: HistoryOptions,
  ) {
    this.repo = new HistoryRepository(db);
  }

  today(): string {
    return dayOf(this.time.now(), this.opts.zone);
  }

  /** Records the current in-use and owned of every VA and tag into today's row. */
  sample(): { day: string; rows: number } {
    const now = this.time.now();
    const day = dayOf(now, this.opts.zone);
    const rows = this.licenses.complianceAll().flatMap((va) =>
      va.tags.map((t) => ({ va_id: va.vaId, tag: t.tag, day, in_use: t.inUse, owned: t.owned, updated_at: now })),
    );
    this.repo.upsert(rows);
    return { day, rows: rows.length };
  }

  history(va: string, q: { tag?: string | undefined; since?: string | undefined; until?: string | undefined }): UsageHistoryList {
    const row = this.accounts.require(va);
    const today = this.today();
    const since = q.since ?? '0000-01-01';
    const until = q.until ?? today;
    for (const [name, v] of [['since', q.since], ['until', q.until]] as const) {
      if (v !== undefined && !isDay(v)) throw badRequest('invalid_day', `${name} must be a calendar day, YYYY-MM-DD (got ${JSON.stringify(v)})`, { [name]: v });
    }
    if (since > until) throw badRequest('invalid_range', `since (${since}) is after until (${until})`, { since, until });
    const items = this.repo.range(row.id, q.tag, since, until).map((r) => ({ day: r.day, tag: r.tag, inUse: r.in_use, owned: r.owned }));
    return { vaId: row.id, vaName: row.name, since, until, items };
  }

  /**
   * The forecast of every VA and tag with history in the window: the last windowDays complete
   * days (today is left out: its peak is not known until it ends, and a part day would pull a
   * rising line down).
   */
  forecast(vaIds?: string[]): UsageForecast[] {
    const todayNum = dayNumber(this.today());
    const from = dayFromNumber(todayNum - this.opts.windowDays);
    const to = dayFromNumber(todayNum - 1);
    const names = new Map(this.accounts.repo.list().map((v) => [v.id, v.name]));
    const byKey = new Map<string, { vaId: string; tag: string; values: { day: string; inUse: number }[] }>();
    for (const r of this.repo.window(from, to)) {
      if (vaIds && !vaIds.includes(r.va_id)) continue;
      const k = `${r.va_id}\u0000${r.tag}`;
      let e = byKey.get(k);
      if (!e) byKey.set(k, (e = { vaId: r.va_id, tag: r.tag, values: [] }));
      e.values.push({ day: r.day, inUse: r.in_use });
    }
    return [...byKey.values()].map((e) => {
      const now = this.licenses.one({ vaId: e.vaId, tag: e.tag });
      const fit = fitLine(e.values);
      const base = { vaId: e.vaId, vaName: names.get(e.vaId) ?? e.vaId, tag: e.tag, displayName: now.displayName, owned: now.owned, inUse: now.inUse, fit };
      const none = (code: NoForecastCode, message: string): UsageForecast => ({ ...base, crossingDate: null, daysAhead: null, noForecast: { code, message } });
      if (now.owned === null) return none('unlimited', 'the VA owns an unlimited quantity');
      if (now.owned <= 0) return none('not_owned', 'the VA owns none of this license now: there is no quantity to cross');
      if (now.inUse > now.owned) return none('already_short', `already short: ${now.inUse} in use, ${now.owned} owned (see the shortage alert)`);
      if (!fit || fit.days < this.opts.minDays) {
        return none('too_few_days', `${fit?.days ?? e.values.length} day(s) of history in the last ${this.opts.windowDays}; a forecast needs ${this.opts.minDays} (forecast.minDays)`);
      }
      if (!(fit.slopePerDay > 0)) return none('not_growing', `in use is not growing (slope ${round(fit.slopePerDay)} per day)`);
      const crossing = crossingDayNumber(fit, now.owned);
      const daysAhead = crossing - todayNum;
      if (daysAhead > HORIZON_DAYS) return none('too_far', `the trend crosses ${now.owned} owned more than ten years ahead`);
      return { ...base, crossingDate: dayFromNumber(crossing), daysAhead, noForecast: null };
    }).sort((a, b) => (a.vaName + '\u0000' + a.tag < b.vaName + '\u0000' + b.tag ? -1 : 1));
  }

  /** Raises shortage_forecast where the crossing is at most alertDays ahead, clears it elsewhere. */
  evaluateAlerts(): void {
    const out: AlertSpec[] = [];
    for (const f of this.forecast()) {
      if (f.daysAhead === null || f.daysAhead > this.opts.alertDays || !f.fit) continue;
      out.push({
        subject: `${f.vaId}/${f.tag}`,
        severity: 'warning',
        message:
          `${f.displayName} in ${f.vaName}: at the trend of the last ${f.fit.days} days (+${round(f.fit.slopePerDay)} a day), ` +
          `in use (${f.inUse}) passes the ${f.owned} owned on ${f.crossingDate}` + (f.daysAhead > 0 ? `, in ${f.daysAhead} day(s)` : ''),
        details: {
          vaId: f.vaId, tag: f.tag, owned: f.owned, inUse: f.inUse, crossingDate: f.crossingDate, daysAhead: f.daysAhead,
          slopePerDay: f.fit.slopePerDay, intercept: f.fit.intercept, r2: f.fit.r2, days: f.fit.days, origin: f.fit.origin,
        },
      });
    }
    this.alerts.reconcile('shortage_forecast', out);
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
