import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';

export interface Ack {
  reportId: string;
  status: 'accepted' | 'rejected';
  reason: string | null;
  ackedAt: string;
}

/** The upstream's ACKs for one device's reports, for the device to fetch on its next call. */
export class AckReader {
  private stmt;
  private pendingStmt;
  constructor(db: Db) {
    this.stmt = db.prepare(
      `SELECT report_id, ack_status, ack_reason, acked_at FROM reports
       WHERE device_id = ? AND source = 'device' AND ack_status != 'pending' AND acked_at >= ?
       ORDER BY acked_at, id LIMIT ?`,
    );
    this.pendingStmt = db.prepare("SELECT count(*) AS n FROM reports WHERE device_id = ? AND ack_status = 'pending'");
  }

  forDevice(deviceId: string, sinceMs: number, limit: number): { acks: Ack[]; pending: number } {
    const rows = this.stmt.all(deviceId, sinceMs, limit) as {
      report_id: string;
      ack_status: 'accepted' | 'rejected';
      ack_reason: string | null;
      acked_at: number;
    }[];
    return {
      acks: rows.map((r) => ({ reportId: r.report_id, status: r.ack_status, reason: r.ack_reason, ackedAt: toIso(r.acked_at)! })),
      pending: (this.pendingStmt.get(deviceId) as { n: number }).n,
    };
  }
}
