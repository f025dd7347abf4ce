import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';
import { listScope } from '../users/authorize.js';

const idParam = z.strictObject({ id: z.string().min(1) });
const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const deviceRoutes = [
  route({
    method: 'get', path: '/devices', summary: 'List devices, filtered by VA, status, last seen or product id', permission: 'read', scope: ['list'],
    query: z.strictObject({
      vaId: z.string().optional(),
      status: z.enum(['active', 'stale', 'deregistered']).optional(),
      pid: z.string().optional(),
      seenBefore: isoTime.optional(),
      seenAfter: isoTime.optional(),
      pendingRekey: z.enum(['true', 'false']).transform((s) => s === 'true').optional(),
      ...pageQuery,
    }),
    handler: ({ services, query, vaIds }) =>
      services.devices.list({
        ...query,
        ...listScope(services, query.vaId, vaIds),
        after: query.cursor,
      }),
  }),
  route({
    method: 'get', path: '/devices/:id', summary: 'One device', permission: 'read', params: idParam, scope: ['device-param'],
    handler: ({ services, params }) => services.devices.get(params.id),
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
