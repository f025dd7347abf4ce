import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { PolledDeviceService } from './polled-devices.js';
import { DeviceClient } from './device-client.js';
import { notFound } from '../shared/errors.js';

export interface DeliveryResult {
  delivered: number;
  failed: number;
  /** ACKs of devices Outpost does not poll (their reports came from files): to import on the device by hand. */
  manual: number;
}

/**
 * The ACKs that came back for devices, from the portal's file or from Cisco's cloud, each
 * delivered to its polled device through the device's REST API (/smartlic-service/import),
 * retried until it is, across restarts. A device whose reports came from files gets its ACK by
 * hand: it is listed, with why.
 */
export class AckDelivery {
  constructor(
    private db: Db,
    private clock: Clock,
    private devices: PolledDeviceService,
    private events: EventService,
    private o: { timeoutMs: number; ca?: string | undefined },
  ) {}

  /** Delivers every ACK not yet delivered to the polled device it belongs to. */
  async deliver(actor: string): Promise<DeliveryResult> {
    const pending = this.db
      .prepare(
        `SELECT p.destination, p.upload_id, p.dev_id, p.content, pd.id AS polled FROM ack_deliveries p
         JOIN devices d ON d.rowid = CAST(p.dev_id AS INTEGER)
         LEFT JOIN polled_devices pd ON pd.device_id = d.id
         WHERE p.delivered_at IS NULL ORDER BY p.received_at`,
      )
      .all() as { destination: string; upload_id: string; dev_id: string; content: Buffer; polled: string | null }[];
    const out: DeliveryResult = { delivered: 0, failed: 0, manual: 0 };
    for (const p of pending) {
      if (!p.polled) {
        out.manual++;
        this.db.prepare('UPDATE ack_deliveries SET last_error = ? WHERE destination = ? AND upload_id = ? AND dev_id = ?').run('not a polled device: import this ACK on the device by hand', p.destination, p.upload_id, p.dev_id);
        continue;
      }
      const d = this.devices.get(p.polled);
      const client = new DeviceClient(this.devices.target(d.id), this.o);
      try {
        await client.importAck(p.content.toString('utf8'));
        this.db.transaction(() => {
          this.db.prepare('UPDATE ack_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE destination = ? AND upload_id = ? AND dev_id = ?').run(this.clock.now(), p.destination, p.upload_id, p.dev_id);
          this.events.append('cisco.ack_delivered', actor, d.id, d.vaId, { from: p.destination, upload: p.upload_id, device: d.name });
        })();
        out.delivered++;
      } catch (e) {
        this.db.prepare('UPDATE ack_deliveries SET attempts = attempts + 1, last_error = ? WHERE destination = ? AND upload_id = ? AND dev_id = ?').run((e as Error).message, p.destination, p.upload_id, p.dev_id);
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
        `SELECT p.destination, p.upload_id, p.dev_id, p.has_policy, p.received_at, p.delivered_at, p.attempts, p.last_error, d.udi_pid || ':' || d.udi_serial AS udi
         FROM ack_deliveries p LEFT JOIN devices d ON d.rowid = CAST(p.dev_id AS INTEGER) ORDER BY p.received_at DESC, p.dev_id`,
      )
      .all() as { destination: string; upload_id: string; dev_id: string; has_policy: number; received_at: number; delivered_at: number | null; attempts: number; last_error: string | null; udi: string | null }[];
    return rows.map((r) => ({
      from: r.destination, uploadId: r.upload_id, devId: r.dev_id, udi: r.udi, policy: r.has_policy === 1, receivedAt: toIso(r.received_at), deliveredAt: toIso(r.delivered_at),
      attempts: r.attempts, lastError: r.last_error,
    }));
  }

  /** One ACK as it came, for a device Outpost does not poll: the operator imports it on the device. */
  content(from: string, uploadId: string, devId: string) {
    const r = this.db
      .prepare(
        `SELECT p.content, p.has_policy, d.udi_pid || ':' || d.udi_serial AS udi FROM ack_deliveries p LEFT JOIN devices d ON d.rowid = CAST(p.dev_id AS INTEGER)
         WHERE p.destination = ? AND p.upload_id = ? AND p.dev_id = ?`,
      )
      .get(from, uploadId, devId) as { content: Buffer; has_policy: number; udi: string | null } | undefined;
    if (!r) throw notFound('ACK', `${from}/${uploadId}/${devId}`);
    return { from, uploadId, devId, udi: r.udi, policy: r.has_policy === 1, content: r.content.toString('utf8') };
  }
}
