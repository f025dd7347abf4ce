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
      `SELECT r.report_id, a.status AS ack_status, a.reason AS ack_reason, a.acked_at FROM reports r JOIN report_acks a ON a.destination = 'outpost' AND a.report_id = r.id
       WHERE r.device_id = ? AND r.source = 'device' AND a.acked_at >= ?
       ORDER BY a.acked_at, r.id LIMIT ?`,
    );
    this.pendingStmt = db.prepare("SELECT count(*) AS n FROM reports r JOIN report_pending p ON p.destination = 'outpost' AND p.report_id = r.id WHERE r.device_id = ?");
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
