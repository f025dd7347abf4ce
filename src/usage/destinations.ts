import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';

/**
 * Where reports go to be acknowledged: the Outpost upstream (by bundle or by sync), the vendor
 * portal (by its offline upload file), and Cisco's cloud.
 */
export type Destination = 'outpost' | 'portal' | 'cssm';
export const DESTINATIONS: readonly Destination[] = ['outpost', 'portal', 'cssm'];
export const DESTINATION_NAMES: Record<Destination, string> = { outpost: 'Outpost upstream', portal: 'vendor portal', cssm: 'Cisco cloud' };

/** Which destinations the site sends to: the Outpost upstream always, the portal if `cisco.portal`. */
export interface DestinationPlan {
  portal: boolean;
}

export type ReportSource = 'device' | 'rum';

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
 * alone, when it arrives: an Outpost device's own signed report goes to the Outpost upstream;
 * a RUM report (from a Cisco device) goes there too and, on a site that uses the vendor portal,
 * to the portal as well. Each destination's export reads its own waits, so no path sends a
 * report to a destination twice or counts it twice.
 */
export class Destinations {
  constructor(
    private db: Db,
    private plan: DestinationPlan,
  ) {}

  forSource(source: ReportSource): Destination[] {
    return source === 'rum' && this.plan.portal ? ['outpost', 'portal'] : ['outpost'];
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
   * Brings the waits in line with the plan, at start: when the site begins using the portal,
   * the RUM reports it has not acknowledged wait for it; when it stops, nothing waits for it.
   */
  reconcile(): { added: number; removed: number } {
    return this.db.transaction(() => {
      if (!this.plan.portal) return { added: 0, removed: this.db.prepare("DELETE FROM report_pending WHERE destination = 'portal'").run().changes };
      const added = this.db
        .prepare(
          `INSERT INTO report_pending (destination, report_id, since)
           SELECT 'portal', r.id, r.received_at FROM reports r
           WHERE r.source = 'rum'
             AND NOT EXISTS (SELECT 1 FROM report_pending p WHERE p.destination = 'portal' AND p.report_id = r.id)
             AND NOT EXISTS (SELECT 1 FROM report_acks a WHERE a.destination = 'portal' AND a.report_id = r.id)`,
        )
        .run().changes;
      return { added, removed: 0 };
    })();
  }

  /** The destinations this site sends to. */
  used(): Destination[] {
    return DESTINATIONS.filter((d) => d === 'outpost' || (d === 'portal' && this.plan.portal));
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
