import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';
import type { Db } from '../store/open.js';
import { ReportService } from './service.js';

// One service per store, made on first use: its statements are prepared once.
const byDb = new WeakMap<Db, ReportService>();
const reports = (db: Db) => byDb.get(db) ?? byDb.set(db, new ReportService(db)).get(db)!;

export const reportRoutes = [
  route({
    method: 'get', path: '/devices/:id/reports', summary: "A device's stored reports, newest first (ids, sizes, times, the tags each measured, its acknowledgement by each destination)", permission: 'read', scope: ['device-param'],
    params: z.strictObject({ id: z.string().min(1) }),
    query: z.strictObject({ ...pageQuery, cursor: z.string().regex(/^\d{1,16}$/, 'a cursor from the previous page').optional() }),
    handler: ({ services, params, query }) =>
      reports(services.db).list(params.id, { before: query.cursor ? Number(query.cursor) : undefined, limit: query.limit }),
  }),
  route({
    method: 'get', path: '/devices/:id/reports/:reportId',
    summary: "One stored report with its original exactly as kept (a RUM report's element as received; a device report's stored JSON)",
    permission: 'read', scope: ['device-param'],
    params: z.strictObject({ id: z.string().min(1), reportId: z.string().min(1).max(300) }),
    query: z.strictObject({ source: z.enum(['device', 'rum']).optional() }),
    handler: ({ services, params, query }) => reports(services.db).original(params.id, params.reportId, query.source),
  }),
  route({
    method: 'post', path: '/reports/prune',
    summary: 'Prune raw reports settled with every destination and older than retention.reportsDays, each leaving a tombstone (or, with dryRun, count them)',
    permission: 'admin',
    body: z.strictObject({ dryRun: z.boolean().default(false) }),
    handler: ({ services, body, actor }) => services.retention.prune({ dryRun: body.dryRun, actor }),
  }),
];
