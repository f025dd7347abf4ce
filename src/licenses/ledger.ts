import type { Db } from '../store/open.js';

export interface UsageKey {
  vaId: string;
  tag: string;
}

/**
 * The in-use ledger. device_usage holds, per device and tag, the measurement with the latest
 * period end; va_usage holds the sum over the active devices of each VA, kept current by
 * deltas so that reading compliance never scans reports or devices. All methods run inside
 * the caller's transaction.
 */
export class Ledger {
  private getUsage;
  private upsertUsage;
  private addVa;
  private usageOf;
  private deleteUsage;

  constructor(private db: Db) {
    this.getUsage = db.prepare('SELECT count, period_end FROM device_usage WHERE device_id = ? AND tag = ?');
    this.upsertUsage = db.prepare(
      `INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id, tag) DO UPDATE SET count = excluded.count, period_end = excluded.period_end, report_pk = excluded.report_pk`,
    );
    this.addVa = db.prepare(
      `INSERT INTO va_usage (va_id, tag, in_use, devices) VALUES (?, ?, ?, ?)
       ON CONFLICT (va_id, tag) DO UPDATE SET in_use = in_use + excluded.in_use, devices = devices + excluded.devices`,
    );
    this.usageOf = db.prepare('SELECT tag, count FROM device_usage WHERE device_id = ?');
    this.deleteUsage = db.prepare('DELETE FROM device_usage WHERE device_id = ?');
  }

  /**
   * Records one measurement. A measurement whose period ends before the one on record is late
   * and changes nothing: a late, older report never lowers what is in use.
   * Returns true if the device's current usage of the tag changed.
   */
  apply(device: { id: string; va_id: string; status: string }, tag: string, count: number, periodEnd: number, reportPk: number): boolean {
    const cur = this.getUsage.get(device.id, tag) as { count: number; period_end: number } | undefined;
    if (cur && periodEnd < cur.period_end) return false;
    this.upsertUsage.run(device.id, tag, count, periodEnd, reportPk);
    if (device.status === 'active') this.addVa.run(device.va_id, tag, count - (cur?.count ?? 0), cur ? 0 : 1);
    return !cur || cur.count !== count;
  }

  /** Takes a device's usage out of its VA (deregistered, stale, or leaving on a move). */
  release(deviceId: string, vaId: string): UsageKey[] {
    return this.shift(deviceId, vaId, -1);
  }

  /** Puts a device's usage into a VA (back from stale, or arriving on a move). */
  restore(deviceId: string, vaId: string): UsageKey[] {
    return this.shift(deviceId, vaId, 1);
  }

  forget(deviceId: string): void {
    this.deleteUsage.run(deviceId);
  }

  private shift(deviceId: string, vaId: string, sign: 1 | -1): UsageKey[] {
    const rows = this.usageOf.all(deviceId) as { tag: string; count: number }[];
    for (const r of rows) this.addVa.run(vaId, r.tag, sign * r.count, sign);
    return rows.map((r) => ({ vaId, tag: r.tag }));
  }

  /** Recomputes va_usage from device_usage of active devices. */
  recompute(): Map<string, { inUse: number; devices: number }> {
    const rows = this.db
      .prepare(
        `SELECT d.va_id, u.tag, sum(u.count) AS in_use, count(*) AS devices
         FROM device_usage u JOIN devices d ON d.id = u.device_id
         WHERE d.status = 'active' GROUP BY d.va_id, u.tag`,
      )
      .all() as { va_id: string; tag: string; in_use: number; devices: number }[];
    return new Map(rows.map((r) => [`${r.va_id}\u0000${r.tag}`, { inUse: r.in_use, devices: r.devices }]));
  }

  stored(): Map<string, { inUse: number; devices: number }> {
    const rows = this.db.prepare('SELECT va_id, tag, in_use, devices FROM va_usage').all() as {
      va_id: string;
      tag: string;
      in_use: number;
      devices: number;
    }[];
    return new Map(rows.map((r) => [`${r.va_id}\u0000${r.tag}`, { inUse: r.in_use, devices: r.devices }]));
  }

  replaceAll(next: Map<string, { inUse: number; devices: number }>): void {
    this.db.prepare('DELETE FROM va_usage').run();
    const ins = this.db.prepare('INSERT INTO va_usage (va_id, tag, in_use, devices) VALUES (?, ?, ?, ?)');
    for (const [k, v] of next) {
      const [va, tag] = k.split('\u0000') as [string, string];
      ins.run(va, tag, v.inUse, v.devices);
    }
  }
}
