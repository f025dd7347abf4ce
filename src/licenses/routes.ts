import { z } from 'zod';
import { route } from '../http/route.js';

const vaParam = z.strictObject({ id: z.string().min(1) });

export const licenseRoutes = [
  route({
    method: 'get', path: '/compliance', summary: 'Compliance of every virtual account', permission: 'read', scope: ['list'],
    handler: ({ services, vaIds }) => ({ items: services.licenses.complianceAll().filter((c) => !vaIds || vaIds.includes(c.vaId)), nextCursor: null }),
  }),
  route({
    method: 'get', path: '/virtual-accounts/:id/compliance', summary: 'Compliance of one virtual account, per tag', permission: 'read',
    params: vaParam, scope: ['va-param'],
    handler: ({ services, params }) => services.licenses.compliance(params.id),
  }),
  route({
    method: 'get', path: '/virtual-accounts/:id/entitlements', summary: 'Entitlement lines of one virtual account', permission: 'read',
    params: vaParam, scope: ['va-param'],
    handler: ({ services, params }) => ({ items: services.licenses.lines(params.id), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/compliance/verify', summary: 'Rebuild the in-use counters from per-device usage and report drift',
    permission: 'admin',
    handler: ({ services, actor }) => services.licenses.verify(actor),
  }),
];
