import type { Db } from '../store/open.js';
import type { Role } from '../users/roles.js';

export type RequestState = 'pending' | 'approved' | 'denied' | 'withdrawn';
export const REQUEST_STATES: readonly RequestState[] = ['pending', 'approved', 'denied', 'withdrawn'];

export interface RequestRow {
  id: string;
  user_id: string;
  va_id: string;
  role: 'va-admin' | 'va-viewer';
  justification: string;
  state: RequestState;
  created_at: number;
  decided_at: number | null;
  decided_by: string | null;
  decided_by_user_id: string | null;
  granted_role: Role | null;
  reason: string | null;
}

/** A request with the names a reader needs: the requester's and the VA's. */
export type NamedRow = RequestRow & { user_name: string; va_name: string };

const SELECT = 'SELECT r.*, u.name AS user_name, v.name AS va_name FROM access_requests r JOIN users u ON u.id = r.user_id JOIN virtual_accounts v ON v.id = r.va_id';

export class AccessRequestRepository {
  constructor(private db: Db) {}

  get(id: string): NamedRow | undefined {
    return this.db.prepare(`${SELECT} WHERE r.id = ?`).get(id) as NamedRow | undefined;
  }

  pendingOf(userId: string, vaId: string): RequestRow | undefined {
    return this.db.prepare("SELECT * FROM access_requests WHERE user_id = ? AND va_id = ? AND state = 'pending'").get(userId, vaId) as RequestRow | undefined;
  }

  /** Requests on the VAs given (every VA for null), in one state or all, oldest first: the queue order. */
  onVas(vaIds: string[] | null, state: RequestState | undefined): NamedRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (vaIds !== null) {
      if (!vaIds.length) return [];
      where.push(`r.va_id IN (${vaIds.map(() => '?').join(', ')})`);
      args.push(...vaIds);
    }
    if (state) {
      where.push('r.state = ?');
      args.push(state);
    }
    return this.db.prepare(`${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY r.created_at, r.id`).all(...args) as NamedRow[];
  }

  /** A user's own requests, newest first. */
  ofUser(userId: string): NamedRow[] {
    return this.db.prepare(`${SELECT} WHERE r.user_id = ? ORDER BY r.created_at DESC, r.id DESC`).all(userId) as NamedRow[];
  }

  insert(r: Pick<RequestRow, 'id' | 'user_id' | 'va_id' | 'role' | 'justification' | 'created_at'>): void {
    this.db
      .prepare("INSERT INTO access_requests (id, user_id, va_id, role, justification, state, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)")
      .run(r.id, r.user_id, r.va_id, r.role, r.justification, r.created_at);
  }

  /** Settles a pending request; false when it was no longer pending. */
  settle(id: string, s: { state: Exclude<RequestState, 'pending'>; at: number; by: string; byUserId: string | null; grantedRole?: Role; reason?: string }): boolean {
    return (
      this.db
        .prepare("UPDATE access_requests SET state = ?, decided_at = ?, decided_by = ?, decided_by_user_id = ?, granted_role = ?, reason = ? WHERE id = ? AND state = 'pending'")
        .run(s.state, s.at, s.by, s.byUserId, s.grantedRole ?? null, s.reason ?? null, id).changes === 1
    );
  }
}
