import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';
import { oneVa } from '../users/authorize.js';

export const eventRoutes = [
  route({
    method: 'get', path: '/events', summary: 'The audit trail, newest first; filter by type (prefix.*), subject, VA or time',
    permission: 'read', scope: ['list'],
    query: z.strictObject({
      type: z.string().max(100).optional(),
      subject: z.string().max(200).optional(),
      vaId: z.string().optional(),
      since: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
      ...pageQuery,
    }),
    handler: ({ services, query, vaIds }) =>
      services.events.list({ ...query, vaId: oneVa(services, query.vaId, vaIds), before: query.cursor ? Number(query.cursor) : undefined }),
  }),
  route({
    method: 'get', path: '/events/verify', summary: 'Check the hash chain of the audit trail', permission: 'read',
    handler: async ({ services }) => {
      const head = services.events.head();
      const broken = await services.events.verifyChain(head.id);
      return { intact: broken === null, firstBrokenId: broken, head };
    },
  }),
  route({
    method: 'get', path: '/security/refusals', summary: 'Counts of requests refused for security reasons', permission: 'read',
    handler: ({ services }) => services.refusals.totals(),
  }),
];
