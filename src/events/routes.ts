import { z } from 'zod';
import { route } from '../http/route.js';
import { pageQuery } from '../http/paging.js';
import { listScope } from '../users/authorize.js';
import { isAbsolute } from 'node:path';
import { verifyTrail } from './trail-verify.js';
import { exportTrail } from './trail-export.js';
import { Download } from '../http/download.js';
import { eventsCsv } from './csv.js';

const absoluteFile = z.string().min(1).max(4096).refine(isAbsolute, 'an absolute path on the collector host');

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional();

/** The filters the list and its CSV share. */
const eventFilters = {
  type: z.string().max(100).optional(),
  subject: z.string().max(200).optional(),
  /** 'user:ada' finds ada's own actions, through a session or a token too; 'token:*' every token's. */
  actor: z.string().min(1).max(200).optional(),
  vaId: z.string().optional(),
  since: instant,
  until: instant,
};

/** A time range that ends before it starts is a mistake to say, not an empty answer. */
const ordered = (q: { since?: number | undefined; until?: number | undefined }) => q.since === undefined || q.until === undefined || q.since < q.until;
const rangeMessage = { message: 'since must be before until', path: ['until'] };

export const eventRoutes = [
  route({
    method: 'get', path: '/events', summary: 'The audit trail, newest first; filter by type (prefix.*), subject, actor, VA or time range (since, until)',
    permission: 'read', scope: ['list'],
    query: z.strictObject({ ...eventFilters, ...pageQuery }).refine(ordered, rangeMessage),
    handler: ({ services, query, vaIds }) =>
      services.events.list({ ...query, ...listScope(services, query.vaId, vaIds), before: query.cursor ? Number(query.cursor) : undefined }),
  }),
  route({
    method: 'get', path: '/events.csv', summary: 'Download the audit trail as CSV, newest first, with the filters of the list',
    permission: 'read', scope: ['list'], contentType: 'text/csv; charset=utf-8',
    query: z.strictObject(eventFilters).refine(ordered, rangeMessage),
    handler: ({ services, query, vaIds }) =>
      new Download(`events-${services.history.today()}.csv`, eventsCsv(services.events, { ...query, ...listScope(services, query.vaId, vaIds) })),
  }),
  route({
    method: 'get', path: '/events/verify', summary: 'Check the hash chain of the audit trail, and hold it against the signed checkpoints kept locally',
    permission: 'read',
    handler: ({ services }) => verifyTrail(services.events, services.checkpoints, services.identity.collectorId),
  }),
  route({
    method: 'post', path: '/events/verify', summary: 'Check the audit trail against a JSON-lines file of signed checkpoints (the upstream\'s export, or an events export)',
    permission: 'read',
    body: z.strictObject({ checkpoints: absoluteFile }),
    handler: ({ services, body }) => verifyTrail(services.events, services.checkpoints, services.identity.collectorId, body.checkpoints),
  }),
  route({
    method: 'post', path: '/events/checkpoints', summary: 'Sign a checkpoint of the audit trail\'s head now (the schedule and every export make one too)',
    permission: 'operate',
    handler: ({ services }) => ({ checkpoint: services.checkpoints.make('manual') }),
  }),
  route({
    // Writes a file on the collector host: operator work, and never over an existing file.
    method: 'post', path: '/events/export', summary: 'Write the audit trail (events after `since`, with their hashes) and its checkpoints as JSON lines, for a SIEM',
    permission: 'operate',
    body: z.strictObject({ out: absoluteFile, since: z.number().int().min(0).default(0) }),
    handler: ({ services, body }) => exportTrail(services.events, services.checkpoints, body),
  }),
  route({
    method: 'get', path: '/security/refusals', summary: 'Counts of requests refused for security reasons', permission: 'read',
    handler: ({ services }) => services.refusals.totals(),
  }),
];
