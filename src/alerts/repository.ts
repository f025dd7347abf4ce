import type { Db } from '../store/open.js';

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertRow {
  id: number;
  kind: string;
  subject: string;
  severity: Severity;
  message: string;
  details: string;
  first_seen_at: number;
  last_seen_at: number;
  cleared_at: number | null;
  acked_at: number | null;
  acked_by: string | null;
  ack_reason: string | null;
  acked_severity: Severity | null;
  acked_level: number | null;
}

/** An alert closed by a clear that had been acknowledged: its acknowledgement ends with it. */
export type ClearedRow = Pick<AlertRow, 'id' | 'kind' | 'subject' | 'severity' | 'message' | 'details' | 'acked_at'>;

export interface ListFilter {
  open?: boolean | undefined;
  kind?: string | undefined;
  acknowledged?: boolean | undefined;
  before?: number | undefined;
  /** Alerts about these VAs only (a caller whose roles are on some VAs). */
  vaIds?: string[] | undefined;
  limit: number;
}

export class AlertRepository {
  private findOpenStmt;
  private insertStmt;
  private touchStmt;
  private clearStmt;
  constructor(private db: Db) {
    this.findOpenStmt = db.prepare('SELECT * FROM alerts WHERE kind = ? AND subject = ? AND cleared_at IS NULL');
    this.insertStmt = db.prepare(
      'INSERT INTO alerts (kind, subject, severity, message, details, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.touchStmt = db.prepare('UPDATE alerts SET severity = ?, message = ?, details = ?, last_seen_at = ? WHERE id = ?');
    this.clearStmt = db.prepare(
      'UPDATE alerts SET cleared_at = ? WHERE kind = ? AND subject = ? AND cleared_at IS NULL RETURNING id, kind, subject, severity, message, details, acked_at',
    );
  }

  findOpen(kind: string, subject: string): AlertRow | undefined {
    return this.findOpenStmt.get(kind, subject) as AlertRow | undefined;
  }
  insert(kind: string, subject: string, severity: Severity, message: string, details: string, at: number): number {
    return Number(this.insertStmt.run(kind, subject, severity, message, details, at, at).lastInsertRowid);
  }
  touch(id: number, severity: Severity, message: string, details: string, at: number): void {
    this.touchStmt.run(severity, message, details, at, id);
  }
  clear(kind: string, subject: string, at: number): ClearedRow[] {
    return this.clearStmt.all(at, kind, subject) as ClearedRow[];
  }
  clearOthers(kind: string, keep: string[], at: number, limit: number): ClearedRow[] {
    return this.db
      .prepare(
        `UPDATE alerts SET cleared_at = ? WHERE id IN (
           SELECT id FROM alerts WHERE kind = ? AND cleared_at IS NULL AND subject NOT IN (SELECT value FROM json_each(?)) LIMIT ?)
         RETURNING id, kind, subject, severity, message, details, acked_at`,
      )
      .all(at, kind, JSON.stringify(keep), limit) as ClearedRow[];
  }
  byId(id: number): AlertRow | undefined {
    return this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
  }
  acknowledge(id: number, at: number, by: string, reason: string, severity: Severity, level: number | null): void {
    this.db
      .prepare('UPDATE alerts SET acked_at = ?, acked_by = ?, ack_reason = ?, acked_severity = ?, acked_level = ? WHERE id = ?')
      .run(at, by, reason, severity, level, id);
  }
  unacknowledge(id: number): void {
    this.db.prepare('UPDATE alerts SET acked_at = NULL, acked_by = NULL, ack_reason = NULL, acked_severity = NULL, acked_level = NULL WHERE id = ?').run(id);
  }
  openSubjects(kind: string): string[] {
    return (this.db.prepare('SELECT subject FROM alerts WHERE kind = ? AND cleared_at IS NULL').all(kind) as { subject: string }[]).map(
      (r) => r.subject,
    );
  }
  /** Open alerts counted by kind and severity, among those about these VAs when given. */
  openCounts(vaIds?: string[]): { kind: string; severity: Severity; count: number }[] {
    const scoped = vaIds ? ` AND va_id IN (${vaIds.map(() => '?').join(', ') || 'NULL'})` : '';
    return this.db
      .prepare(`SELECT kind, severity, count(*) AS count FROM alerts WHERE cleared_at IS NULL${scoped} GROUP BY kind, severity ORDER BY kind, severity`)
      .all(...(vaIds ?? [])) as { kind: string; severity: Severity; count: number }[];
  }
  list(f: ListFilter): AlertRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.vaIds) (where.push(`va_id IN (${f.vaIds.map(() => '?').join(', ') || 'NULL'})`), args.push(...f.vaIds));
    if (f.acknowledged === true) where.push('acked_at IS NOT NULL');
    if (f.acknowledged === false) where.push('acked_at IS NULL');
    if (f.open === true) where.push('cleared_at IS NULL');
    if (f.open === false) where.push('cleared_at IS NOT NULL');
    if (f.kind) (where.push('kind = ?'), args.push(f.kind));
    if (f.before !== undefined) (where.push('id < ?'), args.push(f.before));
    const sql = `SELECT * FROM alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, f.limit) as AlertRow[];
  }
}
