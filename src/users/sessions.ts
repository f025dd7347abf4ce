import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import { forbidden, unauthorized } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Grant, Principal } from './roles.js';

export const SESSION_COOKIE = 'outpost_session';
export const CSRF_HEADER = 'x-csrf-token';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface SessionRow {
  id: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ended_at: number | null;
}

export interface Session {
  id: string;
  csrfToken: string;
  expiresAt: string;
  idleMinutes: number;
}

/**
 * Browser sessions: a random secret in an HttpOnly, SameSite=Strict cookie (a SHA-256 of it is
 * kept), a CSRF token every state-changing request must echo in a header, an idle timeout and
 * an absolute one, and logout. Scripts use API tokens instead.
 */
export class SessionService {
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private grants: (userId: string) => Grant[],
    private o: { idleMinutes: number; absoluteHours: number },
  ) {}

  start(userId: string, userName: string, origin: string): Session & { secret: string } {
    const now = this.clock.now();
    const id = newId('ses', now);
    const secret = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const expires = now + this.o.absoluteHours * 3_600_000;
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO sessions (id, secret_hash, user_id, csrf_token, origin, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, sha256(secret), userId, csrf, origin, now, now, expires);
      this.events.append('user.signed_in', `user:${userName}`, id, null, { user: userName });
    })();
    return { id, secret, csrfToken: csrf, expiresAt: toIso(expires)!, idleMinutes: this.o.idleMinutes };
  }

  /** The principal a session cookie stands for, or why not. Each use moves the idle deadline. */
  principal(secret: string): Principal & { session: SessionRow } {
    const r = this.db
      .prepare('SELECT s.*, u.name, u.status FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ?')
      .get(sha256(secret)) as (SessionRow & { name: string; status: string }) | undefined;
    if (!r || r.ended_at !== null) throw unauthorized('session_ended', 'the session has ended: sign in again');
    const now = this.clock.now();
    if (r.expires_at <= now) throw unauthorized('session_expired', `the session ended at ${toIso(r.expires_at)} (sessions last ${this.o.absoluteHours} h): sign in again`);
    if (r.last_seen_at + this.o.idleMinutes * 60_000 <= now) {
      throw unauthorized('session_idle', `the session ended after ${this.o.idleMinutes} minutes without a request: sign in again`);
    }
    if (r.status !== 'active') throw unauthorized('user_disabled', `the user ${r.name} is disabled`);
    // Written at most once a minute: the idle deadline needs no finer grain.
    if (r.last_seen_at < now - 60_000) this.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id = ?').run(now, r.id);
    return { actor: `user:${r.name} (session ${r.id})`, kind: 'session', userId: r.user_id, grants: this.grants(r.user_id), session: r };
  }

  /** A state-changing request of a session carries its CSRF token in a header a cross-site form cannot set. */
  checkCsrf(session: SessionRow, presented: unknown): void {
    const got = Buffer.from(typeof presented === 'string' ? presented : '');
    const want = Buffer.from(session.csrf_token);
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw forbidden('csrf_token_missing', `a change made in a browser session carries the session's CSRF token in the ${CSRF_HEADER} header`);
    }
  }

  end(sessionId: string, actor: string): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE sessions SET ended_at = coalesce(ended_at, ?) WHERE id = ?').run(this.clock.now(), sessionId);
      this.events.append('user.signed_out', actor, sessionId, null, {});
    })();
  }

  csrfOf(sessionId: string): string {
    return (this.db.prepare('SELECT csrf_token FROM sessions WHERE id = ?').pluck().get(sessionId) as string | undefined) ?? '';
  }
}
