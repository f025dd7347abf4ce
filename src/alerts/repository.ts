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
    this.clearStmt = db.prepare('UPDATE alerts SET cleared_at = ? WHERE kind = ? AND subject = ? AND cleared_at IS NULL');
  }

  findOpen(kind: string, subject: string): AlertRow | undefined {
    return this.findOpenStmt.get(kind, subject) as AlertRow | undefined;
  }
  insert(kind: string, subject: string, severity: Severity, message: string, details: string, at: number): void {
    this.insertStmt.run(kind, subject, severity, message, details, at, at);
  }
  touch(id: number, severity: Severity, message: string, details: string, at: number): void {
    this.touchStmt.run(severity, message, details, at, id);
  }
  clear(kind: string, subject: string, at: number): boolean {
    return this.clearStmt.run(at, kind, subject).changes > 0;
  }
  clearOthers(kind: string, keep: string[], at: number, limit: number): number {
    return this.db
      .prepare(
        `UPDATE alerts SET cleared_at = ? WHERE id IN (
           SELECT id FROM alerts WHERE kind = ? AND cleared_at IS NULL AND subject NOT IN (SELECT value FROM json_each(?)) LIMIT ?)`,
      )
      .run(at, kind, JSON.stringify(keep), limit).changes;
  }
  openSubjects(kind: string): string[] {
    return (this.db.prepare('SELECT subject FROM alerts WHERE kind = ? AND cleared_at IS NULL').all(kind) as { subject: string }[]).map(
      (r) => r.subject,
    );
  }
  list(f: { open?: boolean | undefined; kind?: string | undefined; before?: number | undefined; limit: number }): AlertRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.open === true) where.push('cleared_at IS NULL');
    if (f.open === false) where.push('cleared_at IS NOT NULL');
    if (f.kind) (where.push('kind = ?'), args.push(f.kind));
    if (f.before !== undefined) (where.push('id < ?'), args.push(f.before));
    const sql = `SELECT * FROM alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, f.limit) as AlertRow[];
  }
}
