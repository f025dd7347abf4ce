import { z } from 'zod';
import { route } from '../http/route.js';
import { inScope, listScope } from '../users/authorize.js';

export const tokenRoutes = [
  route({
    method: 'post', path: '/tokens', summary: 'Create a registration token; its secret is shown once', permission: 'operate', status: 201, scope: ['va-body'],
    body: z.strictObject({
      vaId: z.string().min(1),
      description: z.string().trim().min(1).max(500),
      expiresInDays: z.number().int().min(1).max(3650).default(30),
      maxUses: z.number().int().min(1).max(1_000_000).default(1),
    }),
    handler: ({ services, body, actor }) => services.tokens.create(body, actor),
  }),
  route({
    method: 'get', path: '/tokens', summary: 'List registration tokens (never their secrets)', permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      return { items: inScope(services.tokens.list(scope.vaId), scope), nextCursor: null };
    },
  }),
  route({
    method: 'post', path: '/tokens/:id/revoke', summary: 'Revoke a registration token', permission: 'operate', scope: ['token-param'],
    params: z.strictObject({ id: z.string().min(1) }),
    handler: ({ services, params, actor }) => services.tokens.revoke(params.id, actor),
  }),
];
