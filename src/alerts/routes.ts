import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';

export const alertRoutes = [
  route({
    method: 'get', path: '/alerts', summary: 'Alerts, newest first; open ones by default', permission: 'read', scope: ['list'],
    query: z.strictObject({
      state: z.enum(['open', 'cleared', 'all']).default('open'),
      kind: z.string().max(50).optional(),
      // Absent: both; false hides what an operator has acknowledged (the CLI's default).
      acknowledged: z.enum(['true', 'false']).transform((s) => s === 'true').optional(),
      ...pageQuery,
    }),
    handler: ({ services, query, vaIds }) =>
      services.alerts.list({
        vaIds: vaIds ?? undefined,
        open: query.state === 'all' ? undefined : query.state === 'open',
        kind: query.kind,
        acknowledged: query.acknowledged,
        before: query.cursor ? Number(query.cursor) : undefined,
        limit: query.limit,
      }),
  }),
  route({
    method: 'post', path: '/alerts/:id/acknowledge',
    summary: 'Acknowledge an open alert, saying why; it stays acknowledged until it clears or gets worse (severity, or a larger shortage)',
    permission: 'operate',
    params: z.strictObject({ id: z.string().regex(/^[1-9]\d{0,15}$/, 'an alert id: a positive whole number') }),
    body: z.strictObject({ reason: z.string().trim().min(1, 'say why the alert may wait').max(500) }),
    handler: ({ services, params, body, actor }) => services.alerts.acknowledge(Number(params.id), actor, body.reason),
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
