import { z } from 'zod';
import { route } from '../http/route.js';
import { Download } from '../http/download.js';
import { inScope, listScope } from '../users/authorize.js';
import { licensesCsv } from './csv.js';
import { labelQuery } from '../labels/schema.js';

const vaParam = z.strictObject({ id: z.string().min(1) });
const transferBody = z.strictObject({
  fromVaId: z.string().min(1).max(200),
  toVaId: z.string().min(1).max(200),
  tag: z.string().min(1).max(256),
  quantity: z.number().int().positive().max(1_000_000_000),
  reason: z.string().max(500).optional(),
});

const settleBody = z.strictObject({
  as: z.enum(['confirmed', 'reverted']),
  reason: z.string().trim().min(10).max(500),
});

export const licenseRoutes = [
  route({
    method: 'get', path: '/compliance', summary: 'Compliance of every virtual account', permission: 'read', scope: ['list'],
    handler: ({ services, vaIds }) => ({ items: services.licenses.complianceAll().filter((c) => !vaIds || vaIds.includes(c.vaId)), nextCursor: null }),
  }),
  route({
    method: 'get', path: '/licenses.csv', summary: 'Download the licenses as CSV: per VA and tag owned, in use, available and status, a row per entitlement line',
    permission: 'read', scope: ['list'], contentType: 'text/csv; charset=utf-8',
    query: z.strictObject({ vaId: z.string().min(1).max(200).optional(), label: labelQuery.optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      const vas = inScope(services.licenses.complianceAll(), scope);
      const labels = services.labels;
      const wanted = labels.idsOf(query.label);
      return new Download(`licenses-${services.history.today()}.csv`, licensesCsv(vas, (va) => services.licenses.entitlements.byVa(va), services.time.now(), {
        names: (line) => labels.repo.ofLine(line).map((l) => l.name),
        ...(wanted ? { wanted: (line: string) => labels.repo.lineCarries(line, wanted) } : {}),
      }));
    },
  }),
  route({
    method: 'get', path: '/virtual-accounts/:id/compliance', summary: 'Compliance of one virtual account, per tag', permission: 'read',
    params: vaParam, scope: ['va-param'],
    handler: ({ services, params }) => services.licenses.compliance(params.id),
  }),
  route({
    method: 'get', path: '/virtual-accounts/:id/entitlements', summary: 'Entitlement lines of one virtual account', permission: 'read',
    params: vaParam, scope: ['va-param'], query: z.strictObject({ label: labelQuery.optional() }),
    handler: ({ services, params, query }) => ({ items: services.licenses.lines(params.id, services.labels.idsOf(query.label)), nextCursor: null }),
  }),
  route({
    // Global roles pass here; a VA role is judged in the service, on both VAs, inside the transaction that writes.
    method: 'post', path: '/licenses/transfers', summary: 'Transfer a quantity of a license from one virtual account to another (provisional until the upstream confirms it)',
    permission: 'operate', scope: ['list'], body: transferBody, status: 201,
    handler: ({ services, body, principal, actor }) => services.licenses.transfers.request(body, principal, actor),
  }),
  route({
    // As for a transfer: both VAs' rights are judged in the service, inside the transaction that writes.
    method: 'post', path: '/licenses/transfers/:id/settle', summary: 'Settle a provisional transfer by hand: confirmed (the upstream holds it) or reverted (undone, not sent again)',
    permission: 'operate', scope: ['list'], params: z.strictObject({ id: z.string().min(1).max(100) }), body: settleBody,
    handler: ({ services, params, body, principal, actor }) => services.licenses.transfers.settleByHand(params.id, body, principal, actor),
  }),
  route({
    method: 'get', path: '/licenses/transfers', summary: 'License transfers between virtual accounts, newest first, with their state',
    permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().min(1).max(200).optional(), state: z.enum(['provisional', 'confirmed', 'refused']).optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      const only = scope.vaId ? [scope.vaId] : (scope.vaIds ?? null);
      // The upstream that answers provisional transfers: the console says which side each waits on.
      return { items: services.licenses.transfers.list(only, query.state), nextCursor: null, upstream: services.config.exchange.upstream.kind };
    },
  }),
  route({
    method: 'post', path: '/compliance/verify', summary: 'Rebuild the in-use counters from per-device usage and report drift',
    permission: 'admin',
    handler: ({ services, actor }) => services.licenses.verify(actor),
  }),
];
