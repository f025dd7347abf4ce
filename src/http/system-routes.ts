import { route } from './route.js';
import { openApiDocument } from './openapi.js';
import type { Route } from './route.js';

let doc: { version: string; body: unknown } | undefined;

/**
 * What the operator listener serves besides the feature routes: its health, the description of
 * the API, and the collector's identity. Declared like every other route, so that nothing is
 * served that a table does not name.
 */
export const systemRoutes = (all: () => Route[]): Route[] => [
  route({
    method: 'get', path: '/healthz', at: 'root', summary: 'The collector answers: for load balancers and systemd', permission: 'public',
    handler: ({ services }) => ({ status: 'ok', collectorId: services.identity.collectorId }),
  }),
  route({
    method: 'get', path: '/openapi.json', summary: 'This API, described as OpenAPI 3.1 (derived from the route tables)', permission: 'public',
    handler: ({ version }) => {
      if (doc?.version !== version) doc = { version, body: openApiDocument(all(), version) };
      return doc.body;
    },
  }),
  route({
    method: 'get', path: '/identity', summary: "The collector's id, public key and fingerprint, and its trusted time", permission: 'public',
    handler: ({ services }) => ({
      collectorId: services.identity.collectorId,
      publicKey: services.identity.publicKeyB64,
      fingerprint: services.identity.fingerprint,
      time: services.time.check(),
    }),
  }),
];
