import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import { AppError, badRequest } from '../shared/errors.js';
import { assertReadableFile } from '../shared/files.js';
import { PortalAckError, readPortalAck } from './portal-ack.js';
import type { PolledDeviceService } from './polled-devices.js';
import { DeviceClient } from './device-client.js';

export interface AckImportResult {
  uploadId: string;
  devices: number;
  reportsAcknowledged: number;
  skipped: { member: string; reason: string }[];
  delivery: DeliveryResult;
}

export interface DeliveryResult {
  delivered: number;
  failed: number;
  /** ACKs of devices Outpost does not poll (their reports came from files): to import on the device by hand. */
  manual: number;
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
    private devices: PolledDeviceService,
    private events: EventService,
    private o: { timeoutMs: number; ca?: string | undefined },
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
        'INSERT OR IGNORE INTO portal_deliveries (upload_id, dev_id, content, has_policy, received_at) VALUES (?, ?, ?, ?, ?)',
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
    const delivery = await this.deliver(actor);
    return { uploadId: upload.id, devices, reportsAcknowledged: acked, skipped: read.skipped, delivery };
  }

  /** Delivers every ACK not yet delivered to the polled device it belongs to. */
  async deliver(actor: string): Promise<DeliveryResult> {
    const pending = this.db
      .prepare(
        `SELECT p.upload_id, p.dev_id, p.content, pd.id AS polled FROM portal_deliveries p
         JOIN devices d ON d.rowid = CAST(p.dev_id AS INTEGER)
         LEFT JOIN polled_devices pd ON pd.device_id = d.id
         WHERE p.delivered_at IS NULL ORDER BY p.received_at`,
      )
      .all() as { upload_id: string; dev_id: string; content: Buffer; polled: string | null }[];
    const out: DeliveryResult = { delivered: 0, failed: 0, manual: 0 };
    for (const p of pending) {
      if (!p.polled) {
        out.manual++;
        this.db.prepare('UPDATE portal_deliveries SET last_error = ? WHERE upload_id = ? AND dev_id = ?').run('not a polled device: import this ACK on the device by hand', p.upload_id, p.dev_id);
        continue;
      }
      const d = this.devices.get(p.polled);
      const client = new DeviceClient(this.devices.target(d.id), this.o);
      try {
        await client.importAck(p.content.toString('utf8'));
        this.db.transaction(() => {
          this.db.prepare('UPDATE portal_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE upload_id = ? AND dev_id = ?').run(this.clock.now(), p.upload_id, p.dev_id);
          this.events.append('cisco.ack_delivered', actor, d.id, d.vaId, { upload: p.upload_id, device: d.name });
        })();
        out.delivered++;
      } catch (e) {
        this.db.prepare('UPDATE portal_deliveries SET attempts = attempts + 1, last_error = ? WHERE upload_id = ? AND dev_id = ?').run((e as Error).message, p.upload_id, p.dev_id);
        out.failed++;
      } finally {
        await client.close().catch(() => {});
      }
    }
    return out;
  }

  list() {
    const rows = this.db
      .prepare(
        `SELECT p.upload_id, p.dev_id, p.has_policy, p.received_at, p.delivered_at, p.attempts, p.last_error, d.udi_pid || ':' || d.udi_serial AS udi
         FROM portal_deliveries p LEFT JOIN devices d ON d.rowid = CAST(p.dev_id AS INTEGER) ORDER BY p.received_at DESC, p.dev_id`,
      )
      .all() as { upload_id: string; dev_id: string; has_policy: number; received_at: number; delivered_at: number | null; attempts: number; last_error: string | null; udi: string | null }[];
    return rows.map((r) => ({
      uploadId: r.upload_id, devId: r.dev_id, udi: r.udi, policy: r.has_policy === 1, receivedAt: toIso(r.received_at), deliveredAt: toIso(r.delivered_at),
      attempts: r.attempts, lastError: r.last_error,
    }));
  }
}
