import { toIso } from '../shared/clock.js';
import { AppError, conflict, notFound } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import { DESTINATIONS, type Destination } from '../usage/destinations.js';

export type ReportSource = 'device' | 'rum';

export interface StoredReport {
  /** As the device sent it; a RUM report: "PID:SERIAL:report_id". */
  reportId: string;
  source: ReportSource;
  seq: number | null;
  generatedAt: string | null;
  receivedAt: string;
  measurements: number;
  /** The license tags it measured. */
  tags: string[];
  /** The original's size in UTF-8 bytes. */
  bytes: number;
  contentHash: string;
  /**
   * Where the report stands with each destination it is meant for: waiting, or acknowledged
   * (accepted or rejected, with the reason). Settled once no destination waits.
   */
  acknowledgements: ReportAcknowledgement[];
  settled: boolean;
}

export interface ReportAcknowledgement {
  destination: Destination;
  state: 'waiting' | 'accepted' | 'rejected';
  reason: string | null;
  /** Since when it waits, or when it was acknowledged. */
  at: string;
}

export interface ReportOriginal extends StoredReport {
  deviceId: string;
  /** application/xml for a RUM report (its element as received), application/json for a device's. */
  contentType: string;
  /** The original exactly: its UTF-8 encoding is the bytes received (a RUM element) or stored (a device report). */
  original: string;
}

interface Row {
  id: number;
  report_id: string;
  source: ReportSource;
  seq: number | null;
  generated_at: number | null;
  received_at: number;
  measurement_count: number;
  tags_json: string;
  bytes: number;
  content_hash: string;
  acks: string;
}

// Each destination's wait or acknowledgement, read by key (destination, report id).
const IN_DESTINATIONS = `destination IN (${DESTINATIONS.map((d) => `'${d}'`).join(', ')})`;
const COLUMNS = `id, report_id, source, seq, generated_at, received_at, measurement_count, tags_json, length(CAST(body AS BLOB)) AS bytes, content_hash,
  (SELECT json_group_array(json_array(destination, state, reason, at)) FROM (
     SELECT destination, 'waiting' AS state, NULL AS reason, since AS at FROM report_pending WHERE ${IN_DESTINATIONS} AND report_id = reports.id
     UNION ALL
     SELECT destination, status, reason, acked_at FROM report_acks WHERE ${IN_DESTINATIONS} AND report_id = reports.id)) AS acks`;

/** Reads what a device's reports were as they came: the list, and one report's original. */
export class ReportService {
  constructor(private db: Db) {}

  list(deviceId: string, f: { before?: number | undefined; limit: number }): { items: StoredReport[]; nextCursor: string | null } {
    this.requireDevice(deviceId);
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM reports WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?`)
      .all(deviceId, f.before ?? Number.MAX_SAFE_INTEGER, f.limit) as Row[];
    const last = rows[rows.length - 1];
    return { items: rows.map(toReport), nextCursor: rows.length === f.limit && last ? String(last.id) : null };
  }

  original(deviceId: string, reportId: string, source?: ReportSource): ReportOriginal {
    this.requireDevice(deviceId);
    const rows = this.db
      .prepare(`SELECT ${COLUMNS}, body FROM reports WHERE device_id = ? AND report_id = ? AND (? IS NULL OR source = ?)`)
      .all(deviceId, reportId, source ?? null, source ?? null) as (Row & { body: string })[];
    const row = rows[0];
    if (!row) {
      throw new AppError(404, 'report_not_found', `device ${deviceId} holds no ${source ? `${source} ` : ''}report with id ${reportId}; \`outpost reports list ${deviceId}\` lists its reports`, {
        deviceId, reportId,
      });
    }
    if (rows.length > 1) {
      throw conflict('report_ambiguous', `device ${deviceId} holds a device report and a RUM report with id ${reportId}: name the source (--source device or --source rum)`, {
        sources: rows.map((r) => r.source),
      });
    }
    return {
      deviceId,
      ...toReport(row),
      contentType: row.source === 'rum' ? 'application/xml' : 'application/json',
      original: row.body,
    };
  }

  private requireDevice(id: string): void {
    if (!this.db.prepare('SELECT 1 FROM devices WHERE id = ?').get(id)) throw notFound('device', id);
  }
}

function toReport(r: Row): StoredReport {
  const acknowledgements = (JSON.parse(r.acks) as [Destination, ReportAcknowledgement['state'], string | null, number][])
    .map(([destination, state, reason, at]) => ({ destination, state, reason, at: toIso(at)! }))
    .sort((a, b) => DESTINATIONS.indexOf(a.destination) - DESTINATIONS.indexOf(b.destination));
  return {
    reportId: r.report_id, source: r.source, seq: r.seq, generatedAt: toIso(r.generated_at), receivedAt: toIso(r.received_at)!,
    measurements: r.measurement_count, tags: JSON.parse(r.tags_json) as string[], bytes: r.bytes, contentHash: r.content_hash,
    acknowledgements, settled: acknowledgements.every((a) => a.state !== 'waiting'),
  };
}
