import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';

export const alertRoutes = [
  route({
    method: 'get', path: '/alerts', summary: 'Alerts, newest first; open ones by default', permission: 'read',
    query: z.strictObject({
      state: z.enum(['open', 'cleared', 'all']).default('open'),
      kind: z.string().max(50).optional(),
      ...pageQuery,
    }),
    handler: ({ services, query }) =>
      services.alerts.list({
        open: query.state === 'all' ? undefined : query.state === 'open',
        kind: query.kind,
        before: query.cursor ? Number(query.cursor) : undefined,
        limit: query.limit,
      }),
  }),
  route({
    method: 'post', path: '/alerts/evaluate', summary: 'Evaluate every alert condition now', permission: 'operate',
    handler: async ({ services }) => {
      // On a large store the device evaluation goes on in slices: the answer waits for it.
      await services.evaluateAlerts();
      return services.alerts.list({ open: true, limit: 1000 });
    },
  }),
];
