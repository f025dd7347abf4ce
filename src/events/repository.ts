import type { Db } from '../store/open.js';

export interface EventRow {
  id: number;
  at: number;
  type: string;
  actor: string;
  subject: string | null;
  va_id: string | null;
  details: string;
  /** Where it came from (an address, 'socket'); null for the collector's own doing. */
  origin: string | null;
  prev_hash: string;
  hash: string;
}

export interface EventFilter {
  type?: string | undefined;
  subject?: string | undefined;
  vaId?: string | undefined;
  /** Any of these VAs (a caller whose roles are on some VAs only). */
  vaIds?: string[] | undefined;
  /**
   * Who acted: the actor named, alone or with what it acted through ('user:ada (session …)',
   * 'token:tok_… (user:ada)'); ending in '*', any actor that starts so.
   */
  actor?: string | undefined;
  since?: number | undefined;
  /** Events before this time (ms): with `since`, a time range. */
  until?: number | undefined;
  before?: number | undefined; // cursor: events with id below this
  limit: number;
}

export class EventRepository {
  private insertStmt;
  private headStmt;
  private sliceStmt;
  constructor(private db: Db) {
    this.insertStmt = db.prepare(
      'INSERT INTO events (at, type, actor, subject, va_id, details, origin, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.headStmt = db.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1');
    this.sliceStmt = db.prepare('SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?');
  }

  head(): { id: number; hash: string } | undefined {
    return this.headStmt.get() as { id: number; hash: string } | undefined;
  }

  insert(r: Omit<EventRow, 'id'>): number {
    return Number(
      this.insertStmt.run(r.at, r.type, r.actor, r.subject, r.va_id, r.details, r.origin, r.prev_hash, r.hash).lastInsertRowid,
    );
  }

  list(f: EventFilter): EventRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.type) (where.push(f.type.endsWith('.*') ? 'type LIKE ?' : 'type = ?'), args.push(f.type.replace(/\*$/, '%')));
    if (f.subject) (where.push('subject = ?'), args.push(f.subject));
    if (f.vaId) (where.push('va_id = ?'), args.push(f.vaId));
    if (f.vaIds) (where.push(`va_id IN (${f.vaIds.map(() => '?').join(', ') || 'NULL'})`), args.push(...f.vaIds));
    if (f.actor) {
      // Compared by substr, not LIKE: names hold '_' and LIKE ignores case, user names do not.
      if (f.actor.endsWith('*')) {
        const prefix = f.actor.slice(0, -1);
        where.push('substr(actor, 1, length(?)) = ?');
        args.push(prefix, prefix);
      } else {
        where.push("(actor = ? OR substr(actor, 1, length(?) + 2) = ? || ' (' OR substr(actor, -length(?) - 3) = ' (' || ? || ')')");
        args.push(f.actor, f.actor, f.actor, f.actor, f.actor);
      }
    }
    if (f.since !== undefined) (where.push('at >= ?'), args.push(f.since));
    if (f.until !== undefined) (where.push('at < ?'), args.push(f.until));
    if (f.before !== undefined) (where.push('id < ?'), args.push(f.before));
    const sql = `SELECT * FROM events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, f.limit) as EventRow[];
  }

  /** Events since a time counted by type, among those about these VAs when given (events_at_type reads it without the rows). */
  countByType(since: number, vaIds?: string[]): { type: string; count: number }[] {
    const scoped = vaIds ? ` AND va_id IN (${vaIds.map(() => '?').join(', ') || 'NULL'})` : '';
    return this.db
      .prepare(`SELECT type, count(*) AS count FROM events WHERE at >= ?${scoped} GROUP BY type ORDER BY count DESC, type`)
      .all(since, ...(vaIds ?? [])) as { type: string; count: number }[];
  }

  /** Events with ids in (after, upTo], oldest first, at most `limit`. */
  slice(after: number, upTo: number, limit: number): EventRow[] {
    return this.sliceStmt.all(after, upTo, limit) as EventRow[];
  }
}
