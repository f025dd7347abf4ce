import { z } from 'zod';
import { route } from '../http/route.js';
import { listScope } from '../users/authorize.js';
import { overview } from './service.js';

export const overviewRoutes = [
  route({
    method: 'get', path: '/overview',
    summary: 'The console\'s overview: owned against in use per VA and tag (shortages first), devices by status, the exchange, open alerts, and what changed since yesterday',
    permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().min(1).max(200).optional() }),
    handler: ({ services, query, vaIds }) => overview(services, listScope(services, query.vaId, vaIds), vaIds === null),
  }),
];
