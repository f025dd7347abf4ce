import type { Db } from '../store/open.js';
import type { Statement } from 'better-sqlite3';
import { deviceLabelTerms } from '../labels/repository.js';

export type DeviceStatus = 'active' | 'stale' | 'deregistered';
export type PendingReason = 'new_key' | 'claim_keyless' | 'revive';

export interface DeviceRow {
  id: string;
  va_id: string;
  udi_pid: string;
  udi_serial: string;
  hostname: string;
  software_version: string;
  public_key: string | null;
  pending_public_key: string | null;
  pending_since: number | null;
  /** Why the pending key waits for an operator (see PendingReason); absent on rows made before it. */
  pending_reason?: PendingReason | null;
  status: DeviceStatus;
  source: 'registered' | 'rum';
  registered_at: number;
  last_seen_at: number | null;
  last_seq: number | null;
}

export interface DeviceFilter {
  vaId?: string | undefined;
  /** Any of these VAs (a caller whose roles are on some VAs only). */
  vaIds?: string[] | undefined;
  status?: DeviceStatus | undefined;
  /** A product id; ending in `*`, a prefix of one (C9300-*). */
  pid?: string | undefined;
  /** Labels every device listed carries. */
  labelIds?: string[] | undefined;
  seenBefore?: number | undefined;
  seenAfter?: number | undefined;
  pendingRekey?: boolean | undefined;
  source?: DeviceRow['source'] | undefined;
  /** A prefix of the serial, product id, hostname or device id (see searchTerms). */
  q?: string | undefined;
  sort?: DeviceSort | undefined;
  order?: 'asc' | 'desc' | undefined;
  /** Keyset cursor: the sort key and id of the last row of the page before (see deviceCursor). */
  after?: DeviceCursor | undefined;
  limit: number;
}

export type DeviceSort = 'id' | 'serial' | 'pid' | 'hostname' | 'registered' | 'lastSeen';
export interface DeviceCursor {
  key: string | number;
  id: string;
}

/**
 * The column each sort walks, with the id as the tie-break so that a page boundary never
 * falls between equal keys. Every key is non-null (a device never heard from sorts by its
 * registration), so a row-value comparison resumes exactly where the page before ended.
 */
export const SORT_KEYS: Record<DeviceSort, string> = {
  id: 'id',
  serial: 'udi_serial',
  pid: 'udi_pid',
  hostname: 'hostname',
  registered: 'registered_at',
  lastSeen: 'coalesce(last_seen_at, registered_at)',
};

/** The value of a row's sort key, as a cursor carries it. */
export function sortKeyOf(r: DeviceRow, sort: DeviceSort): string | number {
  switch (sort) {
    case 'id': return r.id;
    case 'serial': return r.udi_serial;
    case 'pid': return r.udi_pid;
    case 'hostname': return r.hostname;
    case 'registered': return r.registered_at;
    case 'lastSeen': return r.last_seen_at ?? r.registered_at;
  }
}

/**
 * A search is a prefix of the serial, the product id, the hostname or the id: each a range of
 * an index, where a substring would read every device. Serials and product ids are upper
 * case on the label, so what was typed is also tried in upper case for them.
 */
function searchTerms(q: string): { sql: string; args: string[] } {
  // Past every character a prefix can be followed by: the range [q, q + U+10FFFF) holds exactly the strings starting with q.
  const range = (col: string, v: string) => ({ sql: `(${col} >= ? AND ${col} < ?)`, args: [v, v + '\u{10FFFF}'] });
  const terms = [range('udi_serial', q), range('udi_pid', q), range('hostname', q), range('id', q)];
  const upper = q.toUpperCase();
  if (upper !== q) terms.push(range('udi_serial', upper), range('udi_pid', upper));
  return { sql: `(${terms.map((t) => t.sql).join(' OR ')})`, args: terms.flatMap((t) => t.args) };
}

export type DeviceAuth = Pick<DeviceRow, 'id' | 'va_id' | 'status' | 'public_key'>;

export const udiKey = (pid: string, serial: string) => `${pid}:${serial}`;

export class DeviceRepository {
  private getStmt;
  private authStmt;
  private byUdiStmt;
  private touchStmt;
  private reactivateStmt;
  private updates = new Map<string, Statement<unknown[]>>();
  constructor(private db: Db) {
    this.getStmt = db.prepare('SELECT * FROM devices WHERE id = ?');
    this.authStmt = db.prepare('SELECT id, va_id, status, public_key FROM devices WHERE id = ?');
    this.byUdiStmt = db.prepare('SELECT d.* FROM device_udis u JOIN devices d ON d.id = u.device_id WHERE u.udi = ?');
    // A report's touch records when the device was heard; it never decides its status.
    this.touchStmt = db.prepare('UPDATE devices SET last_seen_at = ?, last_seq = max(coalesce(last_seq, ?), ?) WHERE id = ?');
    // Conditional in SQL, so that however many reports race, a stale device comes back once.
    this.reactivateStmt = db.prepare("UPDATE devices SET status = 'active' WHERE id = ? AND status = 'stale' RETURNING va_id");
  }

  get(id: string): DeviceRow | undefined {
    return this.getStmt.get(id) as DeviceRow | undefined;
  }
  /** What the device request path needs, and no more: it runs thousands of times a second. */
  forAuth(id: string): DeviceAuth | undefined {
    return this.authStmt.get(id) as DeviceAuth | undefined;
  }
  byUdi(pid: string, serial: string): DeviceRow | undefined {
    return this.byUdiStmt.get(udiKey(pid, serial)) as DeviceRow | undefined;
  }
  insert(r: DeviceRow): void {
    this.db
      .prepare(
        `INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, software_version, public_key, pending_public_key,
           pending_since, status, source, registered_at, last_seen_at, last_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.id, r.va_id, r.udi_pid, r.udi_serial, r.hostname, r.software_version, r.public_key, r.pending_public_key,
        r.pending_since, r.status, r.source, r.registered_at, r.last_seen_at, r.last_seq,
      );
    this.addUdi(r.id, r.udi_pid, r.udi_serial);
  }
  /** Binds another UDI (an HA peer) to a device; a UDI already bound stays where it is. */
  addUdi(deviceId: string, pid: string, serial: string): void {
    this.db.prepare('INSERT OR IGNORE INTO device_udis (udi, device_id) VALUES (?, ?)').run(udiKey(pid, serial), deviceId);
  }
  udis(deviceId: string): string[] {
    return (this.db.prepare('SELECT udi FROM device_udis WHERE device_id = ? ORDER BY udi').all(deviceId) as { udi: string }[]).map(
      (r) => r.udi,
    );
  }
  update(id: string, fields: Partial<Omit<DeviceRow, 'id'>>): void {
    const keys = Object.keys(fields);
    if (!keys.length) return;
    // One statement per set of columns, prepared once: a RUM import updates a device per element.
    const shape = keys.join(',');
    let stmt = this.updates.get(shape);
    if (!stmt) {
      stmt = this.db.prepare(`UPDATE devices SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`);
      this.updates.set(shape, stmt);
    }
    stmt.run(...keys.map((k) => (fields as Record<string, unknown>)[k]), id);
  }
  touch(id: string, at: number, seq: number): void {
    this.touchStmt.run(at, seq, seq, id);
  }
  /** Marks a stale device active again; returns its VA if (and only if) this call changed it. */
  reactivateStale(id: string): string | null {
    const row = this.reactivateStmt.get(id) as { va_id: string } | undefined;
    return row ? row.va_id : null;
  }
  list(f: DeviceFilter): DeviceRow[] {
    const { where, args } = this.filter(f);
    const sort = f.sort ?? 'id';
    const key = SORT_KEYS[sort];
    const desc = f.order === 'desc';
    if (f.after) {
      if (sort === 'id') (where.push(desc ? 'id < ?' : 'id > ?'), args.push(f.after.id));
      else (where.push(`(${key}, id) ${desc ? '<' : '>'} (?, ?)`), args.push(f.after.key, f.after.id));
    }
    const dir = desc ? 'DESC' : 'ASC';
    const orderBy = sort === 'id' ? `id ${dir}` : `${key} ${dir}, id ${dir}`;
    const sql = `SELECT * FROM devices ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${orderBy} LIMIT ?`;
    return this.db.prepare(sql).all(...args, f.limit) as DeviceRow[];
  }
  /** Every device the filter matches, a page at a time in id order: a CSV of 100,000 devices never sits in memory whole. */
  *each(f: Omit<DeviceFilter, 'after' | 'limit' | 'sort' | 'order'>, pageRows = 1000): Generator<DeviceRow> {
    let after: DeviceCursor | undefined;
    for (;;) {
      const rows = this.list({ ...f, after, limit: pageRows });
      yield* rows;
      if (rows.length < pageRows) return;
      const last = rows[rows.length - 1]!;
      after = { key: last.id, id: last.id };
    }
  }
  /** The ids and VAs of the devices the filter matches, as a sub-select: a bulk change by filter writes in one statement. */
  matching(f: Omit<DeviceFilter, 'after' | 'limit' | 'sort' | 'order'>): { sql: string; args: unknown[] } {
    const { where, args } = this.filter(f);
    return { sql: `SELECT id, va_id FROM devices ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`, args };
  }
  /** Devices per status among those the filter matches. */
  countByStatus(f: Pick<DeviceFilter, 'vaId' | 'vaIds'>): Record<DeviceStatus, number> {
    const { where, args } = this.filter(f);
    const rows = this.db.prepare(`SELECT status, count(*) AS n FROM devices ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY status`).all(...args) as { status: DeviceStatus; n: number }[];
    const out: Record<DeviceStatus, number> = { active: 0, stale: 0, deregistered: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
  private filter(f: Omit<DeviceFilter, 'limit'>): { where: string[]; args: unknown[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.vaId) (where.push('va_id = ?'), args.push(f.vaId));
    if (f.vaIds) (where.push(`va_id IN (${f.vaIds.map(() => '?').join(', ') || 'NULL'})`), args.push(...f.vaIds));
    if (f.status) (where.push('status = ?'), args.push(f.status));
    if (f.pid?.endsWith('*')) {
      const prefix = f.pid.slice(0, -1);
      (where.push('udi_pid >= ? AND udi_pid < ?'), args.push(prefix, prefix + '\u{10FFFF}'));
    } else if (f.pid) (where.push('udi_pid = ?'), args.push(f.pid));
    if (f.labelIds?.length) {
      const t = deviceLabelTerms(f.labelIds);
      (where.push(...t.sql), args.push(...t.args));
    }
    if (f.seenBefore !== undefined) (where.push('coalesce(last_seen_at, registered_at) < ?'), args.push(f.seenBefore));
    if (f.seenAfter !== undefined) (where.push('coalesce(last_seen_at, registered_at) >= ?'), args.push(f.seenAfter));
    if (f.pendingRekey) where.push('pending_public_key IS NOT NULL');
    if (f.source) (where.push('source = ?'), args.push(f.source));
    if (f.q) {
      const t = searchTerms(f.q);
      (where.push(t.sql), args.push(...t.args));
    }
    return { where, args };
  }
  /** Active devices last heard from before a time (never-heard devices count from registration). */
  silentSince(before: number): DeviceRow[] {
    return this.db
      .prepare("SELECT * FROM devices WHERE status = 'active' AND coalesce(last_seen_at, registered_at) < ?")
      .all(before) as DeviceRow[];
  }
  /**
   * Records a registration's signature; false if it was seen already (a replay). Signatures
   * older than the replay horizon are forgotten: the timestamp check refuses them anyway.
   */
  firstRegistration(signatureHash: string, now: number, horizonMs: number): boolean {
    this.db.prepare('DELETE FROM registrations_seen WHERE seen_at < ?').run(now - horizonMs);
    return this.db.prepare('INSERT OR IGNORE INTO registrations_seen (signature_hash, seen_at) VALUES (?, ?)').run(signatureHash, now).changes === 1;
  }
  pendingRekeys(): DeviceRow[] {
    return this.db.prepare('SELECT * FROM devices WHERE pending_public_key IS NOT NULL').all() as DeviceRow[];
  }
}
