import type { Db } from '../store/open.js';
import type { ReportSource } from '../usage/destinations.js';

/** What stays of a pruned report (migration 019). */
export interface Tombstone {
  report_pk: number;
  content_hash: string;
  measurement_count: number;
}

/**
 * The tombstones of pruned reports, read where a report is written: an insert into `reports`
 * cannot see them, so each new report is looked up here, inside the write's transaction.
 */
export class Tombstones {
  private findStmt;
  private dropStmt;

  constructor(db: Db) {
    this.findStmt = db.prepare('SELECT report_pk, content_hash, measurement_count FROM report_tombstones WHERE device_id = ? AND source = ? AND report_id = ?');
    this.dropStmt = db.prepare('DELETE FROM report_tombstones WHERE device_id = ? AND source = ? AND report_id = ?');
  }

  find(deviceId: string, source: ReportSource, reportId: string): Tombstone | undefined {
    return this.findStmt.get(deviceId, source, reportId) as Tombstone | undefined;
  }

  /** A grown RUM report is live again under its old id: the next prune writes a new tombstone. */
  drop(deviceId: string, source: ReportSource, reportId: string): void {
    this.dropStmt.run(deviceId, source, reportId);
  }
}
