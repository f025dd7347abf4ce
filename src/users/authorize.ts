import type { Services } from '../services.js';
import type { Route } from '../http/route.js';
import { AppError, forbidden, unauthorized } from '../shared/errors.js';
import { allows, type Principal } from './roles.js';

/**
 * Before anything is parsed: is the caller known, and does any of its roles allow the route's
 * permission at all? Returns whether it holds it on every VA (no scope to check then).
 */
export function admit(r: Route, p: Principal | null | undefined): { global: boolean } {
  if (r.permission === 'public') return { global: true };
  if (!p) {
    throw unauthorized('authentication_required', 'this collector has users: send an API token (Authorization: Bearer …; outpost user token create makes one)');
  }
  if (r.permission === 'self' || p.grants.some((g) => g.vaId === null && allows(g.role, r.permission))) return { global: true };
  if (r.scope?.length && p.grants.some((g) => g.vaId !== null && allows(g.role, r.permission))) return { global: false };
  throw forbidden('not_permitted', `${r.method.toUpperCase()} ${r.path} needs the ${r.permission} permission${r.scope?.length ? ' on its virtual account' : ' on every virtual account'}, which ${p.actor} does not hold`, {
    needs: r.permission,
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
 * The one VA a list that filters by a single VA shows: the one the query names, or the only VA
 * of a caller whose roles are on VAs. A caller with roles on several VAs names one.
 */
export function oneVa(services: Services, queryVaId: string | undefined, vaIds: string[] | null): string | undefined {
  if (queryVaId !== undefined) return services.accounts.require(queryVaId).id;
  if (vaIds === null) return undefined;
  if (vaIds.length === 1) return vaIds[0];
  throw new AppError(400, 'name_a_va', `you have roles on ${vaIds.length} virtual accounts: name one with vaId`);
}
