import { z } from 'zod';
import { route } from '../http/route.js';
import { inScope, listScope } from '../users/authorize.js';
import { isDay } from './days.js';

const day = z.string().refine(isDay, 'a calendar day, YYYY-MM-DD');

export const historyRoutes = [
  route({
    method: 'get', path: '/usage/history', summary: 'Daily in-use (the day\'s highest) and owned of one virtual account, per tag, oldest first',
    permission: 'read', scope: ['va-query'],
    query: z.strictObject({
      vaId: z.string().min(1).max(200),
      tag: z.string().min(1).max(500).optional(),
      since: day.optional(),
      until: day.optional(),
    }),
    handler: ({ services, query }) => services.history.history(query.vaId, query),
  }),
  route({
    method: 'get', path: '/usage/forecast',
    summary: 'Per virtual account and tag: the least-squares trend of daily in-use over the last days, and the day it passes what is owned',
    permission: 'read', scope: ['list'],
    query: z.strictObject({ vaId: z.string().min(1).max(200).optional() }),
    handler: ({ services, query, vaIds }) => {
      const scope = listScope(services, query.vaId, vaIds);
      return { items: inScope(services.history.forecast(), scope), nextCursor: null };
    },
  }),
];
