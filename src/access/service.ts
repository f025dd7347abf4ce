import type { AccountService } from '../accounts/service.js';
import type { EventService } from '../events/service.js';
import { toIso, type Clock } from '../shared/clock.js';
import { conflict, forbidden, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Db } from '../store/open.js';
import { covers, VA_ROLES, type Grant, type Principal, type Role } from '../users/roles.js';
import type { UserService } from '../users/service.js';
import { AccessNotices, type AccessNotice } from '../notify/access-notices.js';
import { administers, isGlobalAdmin } from './approvers.js';
import { AccessRequestRepository, type NamedRow, type RequestState } from './repository.js';

export interface AccessRequest {
  id: string;
  userId: string;
  user: string;
  vaId: string;
  va: string;
  /** The role asked for. */
  role: 'va-admin' | 'va-viewer';
  justification: string;
  state: RequestState;
  createdAt: string;
  decidedAt: string | null;
  /** Who settled it: the approver's or denier's user name (or the CLI's actor), the requester's for a withdrawal. */
  decidedBy: string | null;
  /** The role granted, when approved (it may differ from the one asked). */
  grantedRole: Role | null;
  /** Why it was denied. */
  reason: string | null;
}

const toRequest = (r: NamedRow): AccessRequest => ({
  id: r.id, userId: r.user_id, user: r.user_name, vaId: r.va_id, va: r.va_name, role: r.role, justification: r.justification, state: r.state,
  createdAt: toIso(r.created_at)!, decidedAt: toIso(r.decided_at), decidedBy: r.decided_by, grantedRole: r.granted_role, reason: r.reason,
});

const roleText = (g: Grant, vaName: string) => (g.vaId ? `${g.role} on ${vaName}` : `${g.role} (every virtual account)`);

/**
 * Access requests, as the license portals' "Requests" tab: a user asks for a role on a VA it
 * has none (or less) on; an admin or that VA's va-admin approves, granting a role in the same
 * transaction, or denies with a reason; the requester may withdraw it while it waits. What
 * decides each step (the request's state, the approver's rights, the requester's status and
 * roles) is read inside the transaction that writes it.
 */
export class AccessRequestService {
  readonly repo: AccessRequestRepository;
  private notices: AccessNotices;
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private accounts: AccountService,
    private users: UserService,
    /** Wakes the notification delivery once the step's transaction has committed. */
    private told: () => void = () => {},
  ) {
    this.repo = new AccessRequestRepository(db);
    this.notices = new AccessNotices(db, clock);
  }

  /** Tells the step to those who hear of it, inside its transaction: who may approve is read from the store as the approve route reads it. */
  private tell(n: AccessNotice): void {
    // The wake-up runs after the commit (a macrotask): delivery must find the rows written.
    if (this.notices.write(n, (userId) => administers(this.users.grantsOf(userId), n.vaId)) > 0) setImmediate(this.told);
  }

  /**
   * The grants a caller holds now: a user's as the store has them (a token's narrowed to what
   * its user still holds), none for a user disabled since it signed in. The host's own callers
   * (the socket, loopback before any user) are admins.
   */
  private liveGrants(p: Principal): Grant[] {
    if (p.userId === null) return p.grants;
    const status = this.db.prepare('SELECT status FROM users WHERE id = ?').pluck().get(p.userId) as string | undefined;
    if (status !== 'active') return [];
    const held = this.users.grantsOf(p.userId);
    return p.grants.filter((g) => covers(held, g));
  }

  private nameOf(p: Principal, actor: string): string {
    if (p.userId === null) return actor;
    return (this.db.prepare('SELECT name FROM users WHERE id = ?').pluck().get(p.userId) as string | undefined) ?? actor;
  }

  /** The VAs a user may still ask for a role on (those it does not already administer): their ids and names, nothing else. */
  requestable(p: Principal): { id: string; name: string }[] {
    const held = p.userId ? this.users.grantsOf(p.userId) : p.grants;
    return this.accounts.repo.list().filter((v) => !covers(held, { role: 'va-admin', vaId: v.id })).map((v) => ({ id: v.id, name: v.name }));
  }

  create(p: Principal, input: { vaId: string; role: 'va-admin' | 'va-viewer'; justification: string }, actor: string): AccessRequest {
    const userId = p.userId;
    if (!userId) throw forbidden('not_a_user', 'access requests are made by users signed in (the local socket acts as admin already)');
    const id = this.db.transaction(() => {
      const va = this.accounts.require(input.vaId);
      const wanted: Grant = { role: input.role, vaId: va.id };
      const held = this.users.grantsOf(userId);
      const covering = held.find((h) => covers([h], wanted));
      if (covering) {
        throw conflict('role_already_held', `you already hold ${roleText(covering, va.name)}, which covers ${input.role} on ${va.name}: nothing to request`, { vaId: va.id, role: input.role, held: covering });
      }
      const waiting = this.repo.pendingOf(userId, va.id);
      if (waiting) {
        throw conflict('request_pending', `you already have a pending request (${waiting.id}) for ${va.name}: withdraw it to ask for another role`, { requestId: waiting.id, vaId: va.id });
      }
      const now = this.clock.now();
      const id = newId('acr', now);
      this.repo.insert({ id, user_id: userId, va_id: va.id, role: input.role, justification: input.justification, created_at: now });
      const user = this.nameOf(p, actor);
      this.events.append('access.requested', actor, id, va.id, { user, va: va.name, role: input.role, justification: input.justification });
      this.tell({ step: 'requested', requestId: id, userId, user, vaId: va.id, va: va.name, role: input.role, justification: input.justification });
      return id;
    })();
    return toRequest(this.repo.get(id)!);
  }

  /** A pending request that `p` may settle, or why not; inside the settling transaction. */
  private settleable(p: Principal, id: string): { r: NamedRow; grants: Grant[] } {
    const r = this.repo.get(id);
    if (!r) throw notFound('access request', id);
    const grants = this.liveGrants(p);
    if (!administers(grants, r.va_id)) {
      throw forbidden('not_an_approver', `access requests for ${r.va_name} are settled by an admin or a va-admin of ${r.va_name}, which ${p.actor} is not`, { vaId: r.va_id });
    }
    if (p.userId !== null && p.userId === r.user_id) throw forbidden('own_request', 'a request is settled by someone other than its requester');
    if (r.state !== 'pending') throw conflict('not_pending', `access request ${id} is ${r.state} already`, { state: r.state });
    return { r, grants };
  }

  approve(p: Principal, id: string, role: Role, actor: string): AccessRequest {
    this.db.transaction(() => {
      const { r, grants } = this.settleable(p, id);
      if (!isGlobalAdmin(grants) && !VA_ROLES.includes(role)) {
        throw forbidden('role_beyond_yours', `a va-admin grants at most va-admin on its own virtual account: ${role} is granted by an admin`, { role });
      }
      const status = this.db.prepare('SELECT status FROM users WHERE id = ?').pluck().get(r.user_id) as string;
      if (status !== 'active') throw conflict('user_disabled', `the user ${r.user_name} is disabled: deny the request, or enable the user first`);
      const grant: Grant = { role, vaId: VA_ROLES.includes(role) ? r.va_id : null };
      const held = this.users.grantsOf(r.user_id);
      const covering = held.find((h) => covers([h], grant));
      if (covering) {
        throw conflict('role_already_held', `${r.user_name} already holds ${roleText(covering, r.va_name)}, which covers ${roleText(grant, r.va_name)}: grant more, or deny the request`, { held: covering });
      }
      // The role it replaces on this VA (va-viewer, when va-admin is granted) goes: one role per VA reads plainly.
      for (const h of held) {
        if (h.vaId === r.va_id && covers([grant], h)) this.db.prepare('DELETE FROM user_roles WHERE user_id = ? AND role = ? AND va_id = ?').run(r.user_id, h.role, h.vaId);
      }
      this.db.prepare('INSERT INTO user_roles (user_id, role, va_id) VALUES (?, ?, ?)').run(r.user_id, grant.role, grant.vaId ?? '');
      const by = this.nameOf(p, actor);
      this.repo.settle(id, { state: 'approved', at: this.clock.now(), by, byUserId: p.userId, grantedRole: role });
      this.events.append('access.approved', actor, id, r.va_id, { user: r.user_name, va: r.va_name, asked: r.role, role, vaId: grant.vaId });
      this.tell({ step: 'approved', requestId: id, userId: r.user_id, user: r.user_name, vaId: r.va_id, va: r.va_name, role: r.role, justification: r.justification, decidedBy: by, grantedRole: role });
    })();
    return toRequest(this.repo.get(id)!);
  }

  deny(p: Principal, id: string, reason: string, actor: string): AccessRequest {
    this.db.transaction(() => {
      const { r } = this.settleable(p, id);
      const by = this.nameOf(p, actor);
      this.repo.settle(id, { state: 'denied', at: this.clock.now(), by, byUserId: p.userId, reason });
      this.events.append('access.denied', actor, id, r.va_id, { user: r.user_name, va: r.va_name, asked: r.role, reason });
      this.tell({ step: 'denied', requestId: id, userId: r.user_id, user: r.user_name, vaId: r.va_id, va: r.va_name, role: r.role, justification: r.justification, decidedBy: by, reason });
    })();
    return toRequest(this.repo.get(id)!);
  }

  withdraw(p: Principal, id: string, actor: string): AccessRequest {
    this.db.transaction(() => {
      const r = this.repo.get(id);
      // Someone else's request is not named to the caller: as if it did not exist.
      if (!r || p.userId === null || r.user_id !== p.userId) throw notFound('access request', id);
      if (r.state !== 'pending') throw conflict('not_pending', `access request ${id} is ${r.state} already`, { state: r.state });
      this.repo.settle(id, { state: 'withdrawn', at: this.clock.now(), by: r.user_name, byUserId: r.user_id });
      this.events.append('access.withdrawn', actor, id, r.va_id, { user: r.user_name, va: r.va_name, role: r.role });
      this.tell({ step: 'withdrawn', requestId: id, userId: r.user_id, user: r.user_name, vaId: r.va_id, va: r.va_name, role: r.role, justification: r.justification });
    })();
    return toRequest(this.repo.get(id)!);
  }

  /** The requests a caller may settle: every VA's for an admin, its own VAs' for a va-admin, none for anyone else. */
  forApprover(p: Principal, state: RequestState | undefined): AccessRequest[] {
    const grants = this.liveGrants(p);
    const vaIds = isGlobalAdmin(grants) ? null : [...new Set(grants.filter((g) => g.role === 'va-admin' && g.vaId).map((g) => g.vaId!))];
    return this.repo.onVas(vaIds, state).map(toRequest);
  }

  mine(p: Principal): AccessRequest[] {
    return p.userId ? this.repo.ofUser(p.userId).map(toRequest) : [];
  }
}
