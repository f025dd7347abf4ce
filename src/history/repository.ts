import type { Db } from '../store/open.js';

export interface HistoryRow {
  va_id: string;
  tag: string;
  day: string;
  in_use: number;
  owned: number | null;
}

/** The SQL of the usage history (usage_history). */
export class HistoryRepository {
  private upsertStmt;
  private rangeStmt;
  private rangeTagStmt;
  private windowStmt;

  constructor(private db: Db) {
    // The day's in-use only rises: it is the day's peak. Owned is what the last sample saw.
    this.upsertStmt = db.prepare(
      `INSERT INTO usage_history (va_id, tag, day, in_use, owned, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (va_id, tag, day) DO UPDATE SET in_use = max(in_use, excluded.in_use), owned = excluded.owned, updated_at = excluded.updated_at`,
    );
    this.rangeStmt = db.prepare(
      'SELECT va_id, tag, day, in_use, owned FROM usage_history WHERE va_id = ? AND day >= ? AND day <= ? ORDER BY tag, day',
    );
    this.rangeTagStmt = db.prepare(
      'SELECT va_id, tag, day, in_use, owned FROM usage_history WHERE va_id = ? AND tag = ? AND day >= ? AND day <= ? ORDER BY day',
    );
    this.windowStmt = db.prepare('SELECT va_id, tag, day, in_use, owned FROM usage_history WHERE day >= ? AND day <= ? ORDER BY va_id, tag, day');
  }

  upsert(rows: (HistoryRow & { updated_at: number })[]): void {
    this.db.transaction(() => {
      for (const r of rows) this.upsertStmt.run(r.va_id, r.tag, r.day, r.in_use, r.owned, r.updated_at);
    })();
  }

  range(vaId: string, tag: string | undefined, from: string, to: string): HistoryRow[] {
    return (tag === undefined ? this.rangeStmt.all(vaId, from, to) : this.rangeTagStmt.all(vaId, tag, from, to)) as HistoryRow[];
  }

  /** Every VA's and tag's rows between two days (the forecast window: a few thousand rows at most). */
  window(from: string, to: string): HistoryRow[] {
    return this.windowStmt.all(from, to) as HistoryRow[];
  }
}
