import type { Grant } from '../users/roles.js';

export const isGlobalAdmin = (grants: Grant[]) => grants.some((g) => g.role === 'admin' && g.vaId === null);

/** Who may settle a request on a VA: a collector-wide admin, or a va-admin of that VA. */
export const administers = (grants: Grant[], vaId: string) => isGlobalAdmin(grants) || grants.some((g) => g.role === 'va-admin' && g.vaId === vaId);
