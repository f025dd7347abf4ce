import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import { AppError, badRequest } from '../shared/errors.js';
import { assertReadableFile } from '../shared/files.js';
import { PortalAckError, readPortalAck } from './portal-ack.js';
import type { AckDelivery, DeliveryResult } from './ack-delivery.js';

export interface AckImportResult {
  uploadId: string;
  devices: number;
  reportsAcknowledged: number;
  skipped: { member: string; reason: string }[];
  delivery: DeliveryResult;
}


/**
 * The portal's ACK archive: each ACK_dev_<id> file settles, for the portal, exactly the reports
 * that the upload's dev_<id> file carried, and is delivered back to its device through the
 * device's REST API, retried until it is, across restarts.
 */
export class PortalAcks {
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private delivery: AckDelivery,
  ) {}

  async import(file: string, actor: string): Promise<AckImportResult> {
    assertReadableFile(file, 'ACK file');
    const expected = new Set(this.db.prepare('SELECT DISTINCT dev_id FROM portal_upload_reports').pluck().all() as string[]);
    let read;
    try {
      read = await readPortalAck(file, expected);
    } catch (e) {
      if (e instanceof PortalAckError) throw new AppError(400, e.code, e.member ? `${e.member}: ${e.message}` : e.message);
      throw e;
    }
    // The ACK archive names the upload it answers: ACK_UD_VA_<time>.tar.gz for UD_VA_<time>.tar.gz.
    const tag = /^ACK_UD_VA_(.+)\.tar\.gz$/.exec(read.innerName)?.[1];
    const upload = tag ? (this.db.prepare('SELECT id FROM portal_uploads WHERE time_tag = ?').get(tag) as { id: string } | undefined) : undefined;
    if (!upload) throw badRequest('unknown_upload', `${read.innerName} answers no upload this collector wrote (its uploads are named UD_VA_<time>.tar.gz)`);
    const now = this.clock.now();
    let acked = 0;
    let devices = 0;
    this.db.transaction(() => {
      // The reports the device file carried, in the version it carried: a report that grew
      // since the upload was written waits for an ACK of its own.
      const carried = `SELECT u.report_id FROM portal_upload_reports u JOIN report_pending p ON p.destination = 'portal' AND p.report_id = u.report_id
                       WHERE u.upload_id = ? AND u.dev_id = ? AND (u.since IS NULL OR u.since = p.since)`;
      const record = this.db.prepare(
        `INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at) SELECT 'portal', report_id, 'accepted', NULL, ? FROM (${carried})`,
      );
      const settle = this.db.prepare(`DELETE FROM report_pending WHERE destination = 'portal' AND report_id IN (${carried})`);
      const keep = this.db.prepare(
        "INSERT OR IGNORE INTO ack_deliveries (destination, upload_id, dev_id, content, has_policy, received_at) VALUES ('portal', ?, ?, ?, ?, ?)",
      );
      for (const a of read.acks) {
        const n = record.run(now, upload.id, a.devId).changes;
        settle.run(upload.id, a.devId);
        if (!n && !this.db.prepare('SELECT 1 FROM portal_upload_reports WHERE upload_id = ? AND dev_id = ?').get(upload.id, a.devId)) {
          read.skipped.push({ member: a.member, reason: `the upload carried no file for device ${a.devId}` });
          continue;
        }
        acked += n;
        devices++;
        keep.run(upload.id, a.devId, a.content, a.hasPolicy ? 1 : 0, now);
      }
      this.events.append('cisco.portal_ack_imported', actor, upload.id, null, { devices, reports: acked, skipped: read.skipped.length });
    })();
    const delivery = await this.delivery.deliver(actor);
    return { uploadId: upload.id, devices, reportsAcknowledged: acked, skipped: read.skipped, delivery };
  }
}
