import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';

/**
 * Where reports go to be acknowledged: the Outpost upstream (by bundle or by sync), the vendor
 * portal (by its offline upload file), and Cisco's cloud.
 */
export type Destination = 'outpost' | 'portal' | 'cssm';
export const DESTINATIONS: readonly Destination[] = ['outpost', 'portal', 'cssm'];
export type ReportSource = 'device' | 'rum';
export const DESTINATION_NAMES: Record<Destination, string> = { outpost: 'Outpost upstream', portal: 'vendor portal', cssm: 'Cisco cloud' };

/** Which destinations the site sends to (see destinationPlan). */
export type DestinationPlan = Record<Destination, boolean>;

/** The reports each destination takes: the Outpost upstream all; the vendor's, Cisco's own RUM reports. */
const SOURCES: Record<Destination, readonly ReportSource[]> = { outpost: ['device', 'rum'], portal: ['rum'], cssm: ['rum'] };

/**
 * The destinations of the site's configuration. With the Outpost upstream, every report goes
 * to it, and RUM reports to the vendor portal too while `cisco.portal` is on. With the Cisco
 * upstream, RUM reports go to Cisco's cloud (connected) or through the portal file
 * (disconnected), and Outpost's own devices' reports stay local: counted, no ACK expected.
 */
export function destinationPlan(o: { upstreamKind: 'outpost' | 'cisco'; mode: 'connected' | 'disconnected'; portal: boolean }): DestinationPlan {
  if (o.upstreamKind === 'cisco') return { outpost: false, portal: o.mode === 'disconnected', cssm: o.mode === 'connected' };
  return { outpost: true, portal: o.portal, cssm: false };
}

// What a store from before destinations waited for: the Outpost upstream alone.
const BEFORE: DestinationPlan = { outpost: true, portal: false, cssm: false };
const PLAN_KEY = 'destinations.plan';

export interface DestinationStanding {
  destination: Destination;
  /** Reports waiting for this destination's acknowledgement. */
  waiting: number;
  /** When the longest-waiting of them arrived. */
  oldestWaitingSince: string | null;
}

/**
 * Each report waits for an acknowledgement from every destination it is meant for, and is
 * settled only once none still waits. Which destinations a report is meant for is decided here
 * alone, when it arrives, by the plan (destinationPlan). Each destination's export reads its
 * own waits, so no path sends a report to a destination twice or counts it twice.
 */
export class Destinations {
  constructor(
    private db: Db,
    private plan: DestinationPlan,
  ) {}

  forSource(source: ReportSource): Destination[] {
    return DESTINATIONS.filter((d) => this.plan[d] && SOURCES[d].includes(source));
  }

  /**
   * A function that marks a report waiting for each destination meant for `source`. A grown
   * RUM report (the same report id, more measurements) waits again everywhere: an
   * acknowledgement of its earlier copy does not cover what it has added.
   */
  marker(source: ReportSource): (reportId: number, since: number, grown?: boolean) => void {
    const wait = this.db.prepare('INSERT OR REPLACE INTO report_pending (destination, report_id, since) VALUES (?, ?, ?)');
    const unack = this.db.prepare('DELETE FROM report_acks WHERE report_id = ? AND destination = ?');
    const to = this.forSource(source);
    return (reportId, since, grown = false) => {
      for (const d of to) {
        wait.run(d, reportId, since);
        if (grown) unack.run(reportId, d);
      }
    };
  }

  /**
   * Brings the waits in line with the plan, at start, when it has changed since the last start:
   * a destination the site begins to send to waits for every report meant for it that it has
   * not acknowledged; one it stops sending to is waited for no more.
   */
  reconcile(): Partial<Record<Destination, { added: number; removed: number }>> {
    return this.db.transaction(() => {
      const held = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(PLAN_KEY) as string | undefined;
      const before = held ? (JSON.parse(held) as DestinationPlan) : BEFORE;
      const out: Partial<Record<Destination, { added: number; removed: number }>> = {};
      for (const d of DESTINATIONS) {
        if (Boolean(before[d]) === this.plan[d]) continue;
        if (!this.plan[d]) {
          out[d] = { added: 0, removed: this.db.prepare('DELETE FROM report_pending WHERE destination = ?').run(d).changes };
          continue;
        }
        const sources = SOURCES[d].map((x) => `'${x}'`).join(', ');
        const added = this.db
          .prepare(
            `INSERT INTO report_pending (destination, report_id, since)
             SELECT @d, r.id, r.received_at FROM reports r
             WHERE r.source IN (${sources})
               AND NOT EXISTS (SELECT 1 FROM report_pending p WHERE p.destination = @d AND p.report_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM report_acks a WHERE a.destination = @d AND a.report_id = r.id)`,
          )
          .run({ d }).changes;
        out[d] = { added, removed: 0 };
      }
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(PLAN_KEY, JSON.stringify(this.plan));
      return out;
    })();
  }

  /** The destinations this site sends to. */
  used(): Destination[] {
    return DESTINATIONS.filter((d) => this.plan[d]);
  }

  /**
   * Where the reports stand with each destination the site sends to. It counts the waiting
   * reports (a range of the key; acknowledged ones, which can be millions, are not read).
   */
  standing(except?: Destination): DestinationStanding[] {
    const wait = this.db.prepare('SELECT count(*) AS n, min(since) AS oldest FROM report_pending WHERE destination = ?');
    return this.used().filter((d) => d !== except).map((d) => {
      const w = wait.get(d) as { n: number; oldest: number | null };
      return { destination: d, waiting: w.n, oldestWaitingSince: toIso(w.oldest) };
    });
  }

  /** Reports some destination still waits for (each counted once, however many wait for it). */
  unsettled(): number {
    return (this.db.prepare('SELECT count(DISTINCT report_id) AS n FROM report_pending').get() as { n: number }).n;
  }
}
