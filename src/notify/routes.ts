import { z } from 'zod';
import { route } from '../http/route.js';
import { forbidden, notFound } from '../shared/errors.js';
import type { Services } from '../services.js';
import type { Principal } from '../users/roles.js';
import { sinkBody, sinkPatch, type SinkEnv } from './sinks.js';
import { subscriptionBody } from './subscriptions.js';
import { readersOf } from './readers.js';

const knownVa = (services: Services) => (id: string) => services.accounts.list().some((a) => a.id === id);
const sinkEnv = (services: Services, actor: string): SinkEnv => ({ knownVa: knownVa(services), dataDir: services.config.dataDir, events: services.events, actor });
/** A user names only the VAs it may read: another is refused as unknown, so that a VA's existence is not told either. */
const readableVa = (services: Services, userId: string) => {
  const mayRead = readersOf(services.db);
  return (id: string) => knownVa(services)(id) && mayRead(userId, id);
};
const idParam = z.strictObject({ id: z.string().min(1).max(100) });

function caller(principal: Principal | null): string {
  if (!principal?.userId) throw forbidden('not_a_user', 'subscriptions belong to users: sign in as one, or (as an admin) use /notifications/subscriptions/USER_ID');
  return principal.userId;
}

function subscriptionOf(services: Services, userId: string) {
  const s = services.notify.subscriptions.get(userId);
  if (!s) throw notFound('subscription', userId);
  return s;
}

/** Notifications of alerts: e-mail subscriptions (each user's own; an admin's for anyone), syslog and webhook sinks (admins), and their status. */
export const notifyRoutes = [
  route({
    method: 'get', path: '/notifications/status', summary: 'Per channel: notifications pending, failed, the last success and the last error', permission: 'read',
    handler: ({ services }) => services.notify.status(),
  }),
  route({
    method: 'get', path: '/notifications/sinks', summary: 'Syslog and webhook sinks, with their filters', permission: 'admin',
    handler: ({ services }) => ({ items: services.notify.sinks.all(), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/notifications/sinks',
    summary: 'Add a syslog (RFC 5424, UDP or TCP) or webhook (signed JSON) sink with a filter of severities, VAs and kinds; a webhook given no key file gets a key made for it, answered once as `secret`',
    permission: 'admin', status: 201,
    body: sinkBody,
    handler: ({ services, body, actor }) => services.notify.sinks.add(body, sinkEnv(services, actor)),
  }),
  route({
    method: 'patch', path: '/notifications/sinks/:id',
    summary: "Change a sink: its name, filter, resolutions, enabled, and its target (syslog host/port/transport/facility; a webhook's url, hmacKeyFile, or newSecret: true for a key made and answered once as `secret`)",
    permission: 'admin', params: idParam,
    body: sinkPatch,
    handler: ({ services, params, body, actor }) => services.notify.sinks.update(params.id, body, sinkEnv(services, actor)),
  }),
  route({
    method: 'delete', path: '/notifications/sinks/:id', summary: 'Remove a sink; what it had still to deliver is marked failed', permission: 'admin', params: idParam,
    handler: ({ services, params, actor }) => (services.notify.sinks.remove(params.id, sinkEnv(services, actor)), { removed: params.id }),
  }),
  route({
    method: 'get', path: '/notifications/subscriptions', summary: "The caller's e-mail subscription (404 when none)", permission: 'self',
    handler: ({ services, principal }) => subscriptionOf(services, caller(principal)),
  }),
  route({
    method: 'post', path: '/notifications/subscriptions', summary: "Set the caller's e-mail subscription: address, severities, VAs, resolutions, daily digest", permission: 'self',
    body: subscriptionBody,
    handler: ({ services, principal, body }) => {
      const userId = caller(principal);
      return services.notify.subscriptions.set(userId, body, readableVa(services, userId));
    },
  }),
  route({
    method: 'delete', path: '/notifications/subscriptions', summary: "End the caller's e-mail subscription", permission: 'self',
    handler: ({ services, principal }) => (services.notify.subscriptions.remove(caller(principal)), { removed: true }),
  }),
  route({
    method: 'get', path: '/notifications/subscriptions/:id', summary: "A user's e-mail subscription (404 when none)", permission: 'admin', params: idParam,
    handler: ({ services, params }) => subscriptionOf(services, params.id),
  }),
  route({
    method: 'post', path: '/notifications/subscriptions/:id', summary: "Set a user's e-mail subscription", permission: 'admin', params: idParam,
    body: subscriptionBody,
    handler: ({ services, params, body }) => services.notify.subscriptions.set(params.id, body, knownVa(services)),
  }),
  route({
    method: 'delete', path: '/notifications/subscriptions/:id', summary: "End a user's e-mail subscription", permission: 'admin', params: idParam,
    handler: ({ services, params }) => (services.notify.subscriptions.remove(params.id), { removed: params.id }),
  }),
];
