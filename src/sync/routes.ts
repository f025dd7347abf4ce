import { z } from 'zod';
import { route } from '../http/route.js';
import { exchangeStatus } from './status.js';

export const syncRoutes = [
  route({
    method: 'post', path: '/exchange/sync', summary: 'Sync with the upstream now (connected exchange); never two at once', permission: 'operate',
    body: z.strictObject({ wait: z.boolean().default(false) }),
    status: 202,
    handler: async ({ services, body, actor }) => {
      if (body.wait) return { started: true, result: await services.upstreamSync.run(actor) };
      return services.upstreamSync.start(actor);
    },
  }),
  route({
    method: 'get', path: '/exchange/status', summary: 'Exchange status: mode, last sync, next run, progress, reports waiting for an ACK', permission: 'read',
    handler: ({ services }) => exchangeStatus(services),
  }),
];

export const syncEnrollmentRoutes = [
  route({
    method: 'post', path: '/exchange/sync/enroll', summary: 'Send an enrollment request to the upstream over the connection', permission: 'admin',
    body: z.strictObject({ accountName: z.string().min(1).max(100) }),
    handler: ({ services, body, actor }) => services.syncEnrollment.request(body.accountName, actor),
  }),
  route({
    method: 'post', path: '/exchange/sync/trust', summary: "Fetch the upstream's enrollment response; pin its key once the fingerprint is confirmed", permission: 'admin',
    body: z.strictObject({ fingerprint: z.string().max(100).optional() }),
    handler: ({ services, body, actor }) => services.syncEnrollment.trust(body.fingerprint, actor),
  }),
];
