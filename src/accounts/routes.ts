import { z } from 'zod';
import { route } from '../http/route.js';

const vaName = z.string().trim().min(1).max(100);
const idParam = z.strictObject({ id: z.string().min(1) });

export const accountRoutes = [
  route({
    method: 'get', path: '/account', summary: 'The local account', permission: 'read',
    handler: ({ services }) => services.accounts.account(),
  }),
  route({
    method: 'get', path: '/virtual-accounts', summary: 'List virtual accounts', permission: 'read', scope: ['list'],
    handler: ({ services, vaIds }) => ({ items: services.accounts.list().filter((v) => !vaIds || vaIds.includes(v.id)), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/virtual-accounts', summary: 'Create a virtual account (local until the upstream confirms it)', permission: 'admin',
    body: z.strictObject({ name: vaName, description: z.string().max(500).optional() }), status: 201,
    handler: ({ services, body, actor }) => services.accounts.createVa(body, actor),
  }),
  route({
    method: 'get', path: '/virtual-accounts/:id', summary: 'One virtual account, by id or name', permission: 'read', params: idParam, scope: ['va-param'],
    handler: ({ services, params }) => services.accounts.get(params.id),
  }),
  route({
    method: 'patch', path: '/virtual-accounts/:id', summary: 'Rename or describe a virtual account', permission: 'admin', params: idParam,
    body: z.strictObject({ name: vaName.optional(), description: z.string().max(500).optional() }),
    handler: ({ services, params, body, actor }) => services.accounts.updateVa(params.id, body, actor),
  }),
  route({
    method: 'delete', path: '/virtual-accounts/:id', summary: 'Delete an empty virtual account', permission: 'admin', params: idParam,
    status: 204,
    handler: ({ services, params, actor }) => services.accounts.deleteVa(params.id, actor),
  }),
];
