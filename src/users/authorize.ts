import type { Services } from '../services.js';
import type { Route } from '../http/route.js';
import { AppError, forbidden, unauthorized } from '../shared/errors.js';
import { allows, type Principal } from './roles.js';

/**
 * Before anything is parsed: is the caller known, and does any of its roles allow the route's
 * permission at all? Returns whether it holds it on every VA (no scope to check then).
 * `loopback`: the request came over TCP from the collector's own host.
 */
export function admit(r: Route, p: Principal | null | undefined, from: { loopback: boolean } = { loopback: false }): { global: boolean } {
  if (r.permission === 'public') return { global: true };
  if (!p) {
    if (r.permission === 'read-or-loopback' && from.loopback) return { global: true };
    throw unauthorized('authentication_required', 'this collector has users: send an API token (Authorization: Bearer …; outpost user token create makes one)');
  }
  if (r.permission === 'self' || p.grants.some((g) => g.vaId === null && allows(g.role, r.permission))) return { global: true };
  if (r.scope?.length && p.grants.some((g) => g.vaId !== null && allows(g.role, r.permission))) return { global: false };
  throw forbidden('not_permitted', `${r.method.toUpperCase()} ${r.path} needs the ${r.permission === 'read-or-loopback' ? 'read' : r.permission} permission${r.scope?.length ? ' on its virtual account' : ' on every virtual account'}, which ${p.actor} does not hold`, {
    needs: r.permission === 'read-or-loopback' ? 'read' : r.permission,
  });
}

/**
 * For a caller whose roles are on some VAs only: the VAs this request touches must all be
 * theirs. Returns the VAs a `list` route may show. A VA the caller cannot see is answered as
 * not permitted, whether or not it exists.
 */
export function scopeOf(
  r: Route,
  p: Principal,
  services: Services,
  req: { params: Record<string, unknown>; query: Record<string, unknown>; body: unknown },
): string[] {
  const mine = [...new Set(p.grants.filter((g) => g.vaId !== null && allows(g.role, r.permission)).map((g) => g.vaId!))];
  const outside = () => forbidden('outside_your_virtual_accounts', `${p.actor} may ${r.permission === 'read' ? 'see' : 'change'} only the virtual accounts it has a role on`);
  const vaOf = (idOrName: unknown): string => {
    try {
      return services.accounts.require(String(idOrName)).id;
    } catch (e) {
      if (e instanceof AppError && e.status === 404) throw outside();
      throw e;
    }
  };
  const check = (vaId: string | undefined | null) => {
    if (!vaId || !mine.includes(vaId)) throw outside();
  };
  let listed: string[] = mine;
  for (const s of r.scope ?? []) {
    if (s === 'va-param') check(vaOf(req.params.id));
    else if (s === 'va-body') {
      const named = (req.body as { vaId?: unknown } | undefined)?.vaId;
      // A change that names no VA (a rename) is judged by the route's other scopes.
      if (named !== undefined || (r.scope ?? []).length === 1) check(vaOf(named));
    } else if (s === 'va-query') check(vaOf(req.query.vaId));
    else if (s === 'token-param') check(services.tokens.repo.get(String(req.params.id))?.va_id);
    else if (s === 'device-param') check(services.devices.repo.get(String(req.params.id))?.va_id);
    else if (s === 'polled-param') {
      let va: string | undefined;
      try {
        va = services.cisco.devices.get(String(req.params.id)).vaId;
      } catch {
        va = undefined;
      }
      check(va);
    } else if (s === 'list' && req.query.vaId !== undefined) {
      const va = vaOf(req.query.vaId);
      check(va);
      listed = [va];
    }
  }
  return listed;
}

/**
 * What a list shows: the VA the query names (any VA for a global role, one of theirs for a VA
 * role), or every VA the caller's roles are on (vaIds; undefined for a global role).
 */
export function listScope(services: Services, queryVaId: string | undefined, vaIds: string[] | null): { vaId?: string; vaIds?: string[] } {
  if (queryVaId !== undefined) return { vaId: services.accounts.require(queryVaId).id };
  if (vaIds === null) return {};
  return vaIds.length === 1 ? { vaId: vaIds[0]! } : { vaIds };
}

/** The items of a list that are in the scope `listScope` gave. */
export const inScope = <T extends { vaId: string }>(items: T[], s: { vaId?: string; vaIds?: string[] }): T[] =>
  items.filter((i) => (s.vaId === undefined || i.vaId === s.vaId) && (s.vaIds === undefined || s.vaIds.includes(i.vaId)));
