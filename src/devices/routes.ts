import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';
import { listScope } from '../users/authorize.js';
import { Download } from '../http/download.js';
import { devicesCsv } from './csv.js';
import { labelQuery } from '../labels/schema.js';

const idParam = z.strictObject({ id: z.string().min(1) });
/** The search and filters the list and its CSV share. */
const deviceSearchQuery = {
  q: z.string().trim().min(1).max(200).optional(),
  source: z.enum(['registered', 'rum']).optional(),
};
const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** The list's search and filters, which its CSV download takes too. */
const deviceFilterQuery = {
  vaId: z.string().optional(),
  status: z.enum(['active', 'stale', 'deregistered']).optional(),
  pid: z.string().optional(),
  seenBefore: isoTime.optional(),
  seenAfter: isoTime.optional(),
  pendingRekey: z.enum(['true', 'false']).transform((s) => s === 'true').optional(),
  label: labelQuery.optional(),
  ...deviceSearchQuery,
};

export const deviceRoutes = [
  route({
    method: 'get', path: '/devices', summary: 'List devices: search (a prefix of serial, product id, hostname or id), filters (VA, status, source, product id, last seen), sort and keyset paging', permission: 'read', scope: ['list'],
    query: z.strictObject({
      ...deviceFilterQuery,
      sort: z.enum(['id', 'serial', 'pid', 'hostname', 'registered', 'lastSeen']).default('id'),
      order: z.enum(['asc', 'desc']).default('asc'),
      ...pageQuery,
    }),
    handler: ({ services, query, vaIds }) => services.devices.list({ ...query, ...listScope(services, query.vaId, vaIds), labelIds: services.labels.idsOf(query.label) }),
  }),
  route({
    method: 'get', path: '/devices.csv', summary: 'Download the devices as CSV, with the search and filters of the list (every matching device, in id order)',
    permission: 'read', scope: ['list'], contentType: 'text/csv; charset=utf-8',
    query: z.strictObject({
      ...deviceFilterQuery,
    }),
    handler: ({ services, query, vaIds }) =>
      new Download(`devices-${services.history.today()}.csv`, devicesCsv(services.devices.repo, services.labels.repo, {
        ...query, ...listScope(services, query.vaId, vaIds), labelIds: services.labels.idsOf(query.label),
      })),
  }),
  route({
    method: 'get', path: '/devices/:id', summary: 'One device', permission: 'read', params: idParam, scope: ['device-param'],
    handler: ({ services, params }) => services.devices.get(params.id),
  }),
  route({
    method: 'get', path: '/devices/:id/usage', summary: "A device's licenses in use now: per tag its latest measurement, and whether it counts in its VA (active devices only)",
    permission: 'read', params: idParam, scope: ['device-param'],
    handler: ({ services, params }) => services.devices.usage(params.id),
  }),
  route({
    method: 'post', path: '/devices/:id/rekey/approve', summary: 'Approve a pending re-key', permission: 'operate', params: idParam, scope: ['device-param'],
    handler: ({ services, params, actor }) => services.devices.decideRekey(params.id, true, actor),
  }),
  route({
    method: 'post', path: '/devices/:id/rekey/refuse', summary: 'Refuse a pending re-key', permission: 'operate', params: idParam, scope: ['device-param'],
    handler: ({ services, params, actor }) => services.devices.decideRekey(params.id, false, actor),
  }),
  route({
    method: 'post', path: '/devices/:id/move', summary: 'Move a device to another virtual account', permission: 'operate', params: idParam, scope: ['device-param', 'va-body'],
    body: z.strictObject({ vaId: z.string().min(1) }),
    handler: ({ services, params, body, actor }) => services.devices.move(params.id, body.vaId, actor),
  }),
  route({
    method: 'post', path: '/devices/:id/deregister', summary: 'Deregister a device; its licenses are released at once', permission: 'operate',
    params: idParam, scope: ['device-param'],
    handler: ({ services, params, actor }) => services.devices.deregister(params.id, actor),
  }),
];
