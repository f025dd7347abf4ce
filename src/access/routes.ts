import { z } from 'zod';
import { route } from '../http/route.js';
import { ROLES, type Role } from '../users/roles.js';
import { REQUEST_STATES, type RequestState } from './repository.js';

const idParam = z.strictObject({ id: z.string().min(1).max(100) });

/**
 * Access requests. Every route is 'self' (anyone signed in): who may settle a request depends
 * on the request's VA, which the service judges inside the transaction that settles it.
 */
export const accessRoutes = [
  route({
    method: 'get', path: '/access/virtual-accounts', summary: 'The virtual accounts the caller may request access to: their ids and names, nothing else', permission: 'self',
    handler: ({ services, principal }) => ({ items: services.access.requestable(principal!), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/access/requests', summary: 'Request a role on a virtual account, with a justification (one pending request per user and VA)', permission: 'self', status: 201,
    body: z.strictObject({
      vaId: z.string().trim().min(1).max(100),
      role: z.enum(['va-viewer', 'va-admin']),
      justification: z.string().trim().min(10, 'say why in at least 10 characters').max(1000),
    }),
    handler: ({ services, principal, body, actor }) => services.access.create(principal!, body, actor),
  }),
  route({
    method: 'get', path: '/access/requests', summary: 'Access requests for the VAs the caller administers (an admin: every VA), oldest first', permission: 'self',
    query: z.strictObject({ state: z.enum(REQUEST_STATES as [RequestState, ...RequestState[]]).optional() }),
    handler: ({ services, principal, query }) => ({ items: services.access.forApprover(principal!, query.state), nextCursor: null }),
  }),
  route({
    method: 'get', path: '/access/requests/mine', summary: "The caller's own access requests and their outcomes, newest first", permission: 'self',
    handler: ({ services, principal }) => ({ items: services.access.mine(principal!), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/access/requests/:id/approve', summary: 'Approve an access request, granting a role (an admin any; a va-admin at most va-admin on its VA)', permission: 'self', params: idParam,
    body: z.strictObject({ role: z.enum(ROLES as [Role, ...Role[]]) }),
    handler: ({ services, principal, params, body, actor }) => services.access.approve(principal!, params.id, body.role, actor),
  }),
  route({
    method: 'post', path: '/access/requests/:id/deny', summary: 'Deny an access request, with the reason its requester is shown', permission: 'self', params: idParam,
    body: z.strictObject({ reason: z.string().trim().min(1, 'give the reason the requester will read').max(1000) }),
    handler: ({ services, principal, params, body, actor }) => services.access.deny(principal!, params.id, body.reason, actor),
  }),
  route({
    method: 'post', path: '/access/requests/:id/withdraw', summary: 'Withdraw one of the caller\'s pending access requests', permission: 'self', params: idParam,
    handler: ({ services, principal, params, actor }) => services.access.withdraw(principal!, params.id, actor),
  }),
];
