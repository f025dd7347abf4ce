/** What the console knows of the caller: its roles as the who-am-I route gives them, and its session's CSRF token. */
export type Role = 'admin' | 'operator' | 'auditor' | 'va-admin' | 'va-viewer';
export interface Grant {
  role: Role;
  vaId: string | null;
}
export type Permission = 'read' | 'operate' | 'admin';

// The collector's own table (src/users/roles.ts): the console offers only what the API would allow.
const ALLOWS: Record<Role, readonly Permission[]> = {
  admin: ['read', 'operate', 'admin'],
  operator: ['read', 'operate'],
  auditor: ['read'],
  'va-admin': ['read', 'operate'],
  'va-viewer': ['read'],
};

export interface Caller {
  actor: string;
  /** 'session' signed in from a browser; 'loopback' a collector without users yet (nothing to sign out of). */
  kind: string;
  grants: Grant[];
  csrfToken: string | null;
}

/** Whether the caller may use `p` on this VA (or, with no VA, on every VA). */
export function may(c: Caller, p: Permission, vaId: string | null = null): boolean {
  return c.grants.some((g) => (g.vaId === null || g.vaId === vaId) && ALLOWS[g.role].includes(p));
}

/** The VAs on which `p` is held, or 'all'. */
export function vasWith(c: Caller, p: Permission): 'all' | string[] {
  if (may(c, p)) return 'all';
  return [...new Set(c.grants.filter((g) => g.vaId !== null && ALLOWS[g.role].includes(p)).map((g) => g.vaId!))];
}

export const mayAnywhere = (c: Caller, p: Permission): boolean => {
  const v = vasWith(c, p);
  return v === 'all' || v.length > 0;
};
