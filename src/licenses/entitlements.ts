import type { Db } from '../store/open.js';

export type EntitlementKind = 'perpetual' | 'subscription' | 'term' | 'unlimited';

export interface EntitlementRow {
  id: string;
  va_id: string;
  tag: string;
  display_name: string;
  kind: EntitlementKind;
  quantity: number;
  starts_at: number;
  ends_at: number | null;
  created_at: number;
  /** Set on a destination line credited by a transfer not yet replaced by an upstream snapshot. */
  transfer_id?: string | null;
}

export class EntitlementRepository {
  private byVaStmt;
  constructor(private db: Db) {
    this.byVaStmt = db.prepare('SELECT * FROM entitlements WHERE va_id = ? ORDER BY tag, starts_at');
  }
  insert(r: EntitlementRow): void {
    this.db
      .prepare(
        'INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at, transfer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(r.id, r.va_id, r.tag, r.display_name, r.kind, r.quantity, r.starts_at, r.ends_at, r.created_at, r.transfer_id ?? null);
  }
  byVa(vaId: string): EntitlementRow[] {
    return this.byVaStmt.all(vaId) as EntitlementRow[];
  }
  endingBetween(from: number, to: number): EntitlementRow[] {
    return this.db
      .prepare('SELECT * FROM entitlements WHERE ends_at IS NOT NULL AND ends_at > ? AND ends_at <= ?')
      .all(from, to) as EntitlementRow[];
  }
}
