import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import { AppError, badRequest, conflict, notFound, unauthorized } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { covers, VA_ROLES, type Grant, type Principal, type Role } from './roles.js';
import { decoyHash, hashPassword, MIN_PASSWORD, verifyPassword } from './passwords.js';

export interface User {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  roles: Grant[];
  locked: boolean;
  createdAt: string;
  passwordChangedAt: string;
}

export interface ApiToken {
  id: string;
  name: string;
  userId: string;
  roles: Grant[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

interface UserRow {
  id: string;
  name: string;
  password_hash: string;
  status: 'active' | 'disabled';
  failed_logins: number;
  locked_until: number | null;
  password_changed_at: number;
  created_at: number;
}

interface TokenRow {
  id: string;
  user_id: string;
  name: string;
  secret_hash: string;
  roles_json: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** Failed logins before an account is locked, and for how long. */
export const LOCK_AFTER = 5;
export const LOCK_MS = 15 * 60_000;
const TOKEN_PREFIX = 'opt_';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Operators and what they may do: local users (argon2id password hashes), their roles, and
 * their API tokens. Every change is an event; no password or token secret is ever stored or
 * shown but at creation (the secret, once).
 */
export class UserService {
  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private events: EventService,
  ) {}

  /** Whether any user exists: until one does, the collector is run from its host alone. */
  any(): boolean {
    return this.db.prepare('SELECT 1 FROM users LIMIT 1').get() !== undefined;
  }

  grantsOf(userId: string): Grant[] {
    return this.grants(userId);
  }

  private grants(userId: string): Grant[] {
    return (this.db.prepare("SELECT role, va_id FROM user_roles WHERE user_id = ? ORDER BY role, va_id").all(userId) as { role: Role; va_id: string }[]).map((r) => ({
      role: r.role, vaId: r.va_id || null,
    }));
  }

  private toUser(r: UserRow): User {
    return {
      id: r.id, name: r.name, status: r.status, roles: this.grants(r.id), locked: (r.locked_until ?? 0) > this.clock.now(),
      createdAt: toIso(r.created_at)!, passwordChangedAt: toIso(r.password_changed_at)!,
    };
  }

  private row(idOrName: string): UserRow {
    const r = this.db.prepare('SELECT * FROM users WHERE id = ? OR name = ?').get(idOrName, idOrName) as UserRow | undefined;
    if (!r) throw notFound('user', idOrName);
    return r;
  }

  list(): User[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[]).map((r) => this.toUser(r));
  }

  get(idOrName: string): User {
    return this.toUser(this.row(idOrName));
  }

  /** Roles as given: a VA role names its VA (by id or name), a global role none. */
  private checkRoles(roles: { role: Role; vaId?: string | null | undefined }[]): Grant[] {
    if (!roles.length) throw badRequest('no_role', 'give the user at least one role: admin, operator, auditor, or va-admin / va-viewer with a VA');
    return roles.map((r) => {
      const scoped = VA_ROLES.includes(r.role);
      if (scoped && !r.vaId) throw badRequest('role_needs_va', `${r.role} is a role on one virtual account: name it`);
      if (!scoped && r.vaId) throw badRequest('role_is_global', `${r.role} is a role on every virtual account: name no VA`);
      return { role: r.role, vaId: scoped ? this.accounts.require(r.vaId!).id : null };
    });
  }

  private checkPassword(password: string, name: string): void {
    if (password.length < MIN_PASSWORD) throw badRequest('weak_password', `a password has at least ${MIN_PASSWORD} characters`);
    if (password.length > 1024) throw badRequest('password_too_long', 'a password has at most 1024 characters');
    if (password.toLowerCase().includes(name.toLowerCase())) throw badRequest('weak_password', 'the password must not contain the user name');
  }

  async add(input: { name: string; password: string; roles: { role: Role; vaId?: string | null }[] }, actor: string): Promise<User> {
    const name = input.name.trim();
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw badRequest('invalid_user_name', 'a user name is 1 to 64 letters, digits, and . _ @ -');
    this.checkPassword(input.password, name);
    const roles = this.checkRoles(input.roles);
    const hashed = await hashPassword(input.password);
    const now = this.clock.now();
    const id = newId('usr', now);
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM users WHERE name = ?').get(name)) throw conflict('user_exists', `a user named ${name} exists already`);
      this.db
        .prepare("INSERT INTO users (id, name, password_hash, status, password_changed_at, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?)")
        .run(id, name, hashed, now, now, now);
      const grant = this.db.prepare('INSERT INTO user_roles (user_id, role, va_id) VALUES (?, ?, ?)');
      for (const g of roles) grant.run(id, g.role, g.vaId ?? '');
      this.events.append('user.added', actor, id, null, { name, roles });
    })();
    return this.get(id);
  }

  setRoles(idOrName: string, roles: { role: Role; vaId?: string | null }[], actor: string): User {
    const u = this.row(idOrName);
    const grants = this.checkRoles(roles);
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM user_roles WHERE user_id = ?').run(u.id);
      const grant = this.db.prepare('INSERT INTO user_roles (user_id, role, va_id) VALUES (?, ?, ?)');
      for (const g of grants) grant.run(u.id, g.role, g.vaId ?? '');
      this.lastAdminKept(u.id);
      this.events.append('user.roles_changed', actor, u.id, null, { name: u.name, roles: grants });
    })();
    return this.get(u.id);
  }

  setStatus(idOrName: string, status: 'active' | 'disabled', actor: string): User {
    const u = this.row(idOrName);
    this.db.transaction(() => {
      this.db.prepare('UPDATE users SET status = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?').run(status, this.clock.now(), u.id);
      this.lastAdminKept(u.id);
      this.events.append(status === 'active' ? 'user.enabled' : 'user.disabled', actor, u.id, null, { name: u.name });
    })();
    return this.get(u.id);
  }

  async resetPassword(idOrName: string, password: string, actor: string): Promise<User> {
    const u = this.row(idOrName);
    this.checkPassword(password, u.name);
    const hashed = await hashPassword(password);
    this.db.transaction(() => {
      const now = this.clock.now();
      this.db.prepare('UPDATE users SET password_hash = ?, password_changed_at = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?').run(hashed, now, now, u.id);
      this.events.append('user.password_reset', actor, u.id, null, { name: u.name });
    })();
    return this.get(u.id);
  }

  remove(idOrName: string, actor: string): void {
    const u = this.row(idOrName);
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM users WHERE id = ?').run(u.id);
      this.lastAdminKept(null);
      this.events.append('user.removed', actor, u.id, null, { name: u.name });
    })();
  }

  /** An admin who could still sign in remains, or the change is refused (the socket is the way back in, but a site should not need it). */
  private lastAdminKept(changed: string | null): void {
    const admins = this.db
      .prepare("SELECT count(*) FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'admin' WHERE u.status = 'active'")
      .pluck()
      .get() as number;
    const anyUser = this.any();
    if (anyUser && admins === 0) {
      throw conflict('last_admin', `this would leave no active admin${changed ? '' : ' among the users'}: make another user admin first`);
    }
  }

  /**
   * Checks a user's password. Failures are counted per account; after LOCK_AFTER in a row the
   * account is locked for LOCK_MS and says so. Unknown users cost the same time as known ones.
   */
  async login(name: string, password: string): Promise<Principal> {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    if (!r) {
      await verifyPassword(await decoyHash(), password);
      throw unauthorized('bad_credentials', 'the user name or the password is wrong');
    }
    const now = this.clock.now();
    if ((r.locked_until ?? 0) > now) {
      throw new AppError(423, 'account_locked', `the account ${r.name} is locked after ${LOCK_AFTER} failed logins until ${toIso(r.locked_until)}; an admin can unlock it (outpost user enable ${r.name})`);
    }
    const ok = await verifyPassword(r.password_hash, password);
    if (!ok || r.status !== 'active') {
      this.db.transaction(() => {
        const failed = r.failed_logins + 1;
        const lock = failed >= LOCK_AFTER ? now + LOCK_MS : null;
        this.db.prepare('UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?').run(lock ? 0 : failed, lock, r.id);
        this.events.append(lock ? 'user.locked' : 'user.login_failed', `user:${r.name}`, r.id, null, { name: r.name, ...(lock ? { until: toIso(lock) } : {}) });
      })();
      throw unauthorized('bad_credentials', 'the user name or the password is wrong');
    }
    this.db.prepare('UPDATE users SET failed_logins = 0 WHERE id = ?').run(r.id);
    return { actor: `user:${r.name}`, kind: 'user', userId: r.id, grants: this.grants(r.id) };
  }

  // -- API tokens -----------------------------------------------------------------------------

  private toToken(r: TokenRow): ApiToken {
    return {
      id: r.id, name: r.name, userId: r.user_id, roles: JSON.parse(r.roles_json) as Grant[], createdAt: toIso(r.created_at)!, expiresAt: toIso(r.expires_at)!,
      revokedAt: toIso(r.revoked_at), lastUsedAt: toIso(r.last_used_at),
    };
  }

  /** A token for scripts, carrying the user's roles or fewer; its secret is returned once. */
  createToken(userId: string, input: { name: string; expiresInDays: number; roles?: { role: Role; vaId?: string | null }[] | undefined }, actor: string): ApiToken & { secret: string } {
    const u = this.row(userId);
    const held = this.grants(u.id);
    const roles = input.roles?.length ? this.checkRoles(input.roles) : held;
    for (const g of roles) {
      if (!covers(held, g)) throw new AppError(403, 'role_not_held', `${u.name} does not hold ${g.role}${g.vaId ? ` on ${g.vaId}` : ''}: a token carries its user's roles or fewer`);
    }
    const now = this.clock.now();
    const id = newId('tok', now);
    const secret = randomBytes(32).toString('base64url');
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO api_tokens (id, user_id, name, secret_hash, roles_json, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, u.id, input.name, sha256(secret), JSON.stringify(roles), now, now + input.expiresInDays * 86_400_000);
      this.events.append('user.token_created', actor, id, null, { user: u.name, name: input.name, roles, expiresInDays: input.expiresInDays });
    })();
    return { ...this.toToken(this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow), secret: `${TOKEN_PREFIX}${id}.${secret}` };
  }

  tokens(userId: string | null): ApiToken[] {
    const rows = (userId ? this.db.prepare('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at').all(userId) : this.db.prepare('SELECT * FROM api_tokens ORDER BY created_at').all()) as TokenRow[];
    return rows.map((r) => this.toToken(r));
  }

  /** Revokes a token: the user's own, or any when `anyUser` (an admin). */
  revokeToken(id: string, userId: string | null, actor: string): ApiToken {
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
    if (!r || (userId !== null && r.user_id !== userId)) throw notFound('API token', id);
    this.db.transaction(() => {
      this.db.prepare('UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(this.clock.now(), id);
      this.events.append('user.token_revoked', actor, id, null, { name: r.name });
    })();
    return this.toToken(this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow);
  }

  /** The principal a bearer token stands for: its roles, narrowed to what its user still holds. */
  authenticateToken(presented: string): Principal {
    const m = /^opt_(tok_[A-Za-z0-9_-]{1,80})\.([A-Za-z0-9_-]{43})$/.exec(presented);
    const r = m ? (this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(m[1]) as TokenRow | undefined) : undefined;
    const expected = Buffer.from(r?.secret_hash ?? '0'.repeat(64), 'hex');
    const got = Buffer.from(sha256(m?.[2] ?? ''), 'hex');
    if (!r || !timingSafeEqual(expected, got)) throw unauthorized('bad_token', 'the API token is not one this collector issued');
    const now = this.clock.now();
    if (r.revoked_at !== null) throw unauthorized('token_revoked', `API token ${r.id} was revoked on ${toIso(r.revoked_at)}`);
    if (r.expires_at <= now) throw unauthorized('token_expired', `API token ${r.id} expired on ${toIso(r.expires_at)}: make a new one`);
    const u = this.db.prepare('SELECT * FROM users WHERE id = ?').get(r.user_id) as UserRow;
    if (u.status !== 'active') throw unauthorized('user_disabled', `the user ${u.name} is disabled`);
    // Throttled: the last-use time is written at most once a minute per token.
    if ((r.last_used_at ?? 0) < now - 60_000) this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, r.id);
    const held = this.grants(u.id);
    const grants = (JSON.parse(r.roles_json) as Grant[]).filter((g) => covers(held, g));
    return { actor: `token:${r.id} (user:${u.name})`, kind: 'token', userId: u.id, grants };
  }
}
