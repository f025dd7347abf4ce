import type { Db } from '../store/open.js';

/**
 * The one response whose ACKs are being applied, slice by slice. It is written in the
 * transaction of each slice, so it always says exactly how far the committed ACKs reach; it is
 * removed in the transaction that applies the snapshot and raises the high-water marks.
 * While it exists no other response may start (their slices would interleave), and the same
 * response imported again resumes where it stopped instead of being judged a replay.
 */
export interface ImportProgress {
  hash: string;
  bundleId: string;
  sequence: number;
  ackOnly: boolean;
  forced: boolean;
  /** The ACK line being applied (0-based) and, within its run of refs, the next ref. */
  line: number;
  nextRef: number;
  accepted: number;
  rejected: number;
  rejectedReasons: Record<string, number>;
  startedAt: number;
}

const KEY = 'exchange.import_in_progress';

export class ImportProgressStore {
  private getStmt;
  private putStmt;
  private delStmt;
  constructor(db: Db) {
    this.getStmt = db.prepare('SELECT value FROM meta WHERE key = ?');
    this.putStmt = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.delStmt = db.prepare('DELETE FROM meta WHERE key = ?');
  }

  get(): ImportProgress | null {
    const row = this.getStmt.get(KEY) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as ImportProgress) : null;
  }
  /** Call inside the transaction that commits the ACKs it accounts for. */
  put(p: ImportProgress): void {
    this.putStmt.run(KEY, JSON.stringify(p));
  }
  clear(): void {
    this.delStmt.run(KEY);
  }
}
