import type { Permission } from '../http/route.js';

export type Role = 'admin' | 'operator' | 'auditor' | 'va-admin' | 'va-viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'auditor', 'va-admin', 'va-viewer'];
export const VA_ROLES: readonly Role[] = ['va-admin', 'va-viewer'];

/** A role, on every VA (vaId null) or on one. */
export interface Grant {
  role: Role;
  vaId: string | null;
}

/**
 * What each role may do, as license portals divide it: admin everything (users, keys, trust);
 * operator the daily work (tokens, devices, exports, imports, syncs, polling); auditor reads
 * everything, the event log included, and changes nothing; va-admin and va-viewer the same as
 * operator and auditor, on their own VA only.
 */
const ALLOWS: Record<Role, readonly Permission[]> = {
  admin: ['read', 'operate', 'admin'],
  operator: ['read', 'operate'],
  auditor: ['read'],
  'va-admin': ['read', 'operate'],
  'va-viewer': ['read'],
};

/** Credentials sent to a `read-or-loopback` route are judged as for `read`: only a caller without any is let in by where it is. */
export const allows = (role: Role, p: Permission): boolean => p === 'public' || p === 'self' || ALLOWS[role].includes(p === 'read-or-loopback' ? 'read' : p);

/** Who is asking, as the collector knows it. */
export interface Principal {
  /** For events: 'user:NAME', 'token:ID (user:NAME)', 'socket:OSUSER (self-reported)', 'loopback'. */
  actor: string;
  kind: 'user' | 'token' | 'session' | 'socket' | 'loopback';
  /** For a browser session: its id, and the CSRF token its changes must carry. */
  session?: { id: string; csrf_token: string };
  userId: string | null;
  grants: Grant[];
}

/**
 * Whether the grants held cover the one wanted: a token carries its user's roles or fewer. A
 * grant covers another when it allows at least as much, on at least as many VAs.
 */
export function covers(held: Grant[], wanted: Grant): boolean {
  return held.some(
    (h) => (h.vaId === null || h.vaId === wanted.vaId) && ALLOWS[wanted.role].every((p) => ALLOWS[h.role].includes(p)),
  );
}
