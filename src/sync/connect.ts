import type { Config } from '../config/schema.js';
import type { Identity } from '../identity/identity.js';
import type { Clock } from '../shared/clock.js';
import { UpstreamClient } from './http-client.js';
import type { SyncTransport } from './transport.js';

/**
 * The connection to the configured Outpost upstream, as the sync uses it: the HTTP(S) client
 * (TLS, pin, proxy, timeouts) with this collector's key signing each fetch of an answer.
 */
export function connectUpstream(config: Config, identity: Identity, clock: Clock): SyncTransport {
  const client = UpstreamClient.fromConfig(config.exchange.connection);
  const signer = { collectorId: identity.collectorId, keyId: identity.fingerprint, privateKey: identity.privateKey };
  return {
    hello: () => client.hello(),
    postBundle: (path, file) => client.postBundle(path, file),
    async fetchBundle(path, o) {
      const r = await client.getSigned(path, signer, clock.now(), { toFile: o.toFile, maxBytes: o.maxBytes, ...(o.wait ? { wait: o.wait } : {}) });
      return { status: r.status, json: r.json, ...(r.file ? { file: r.file } : {}), ...(r.retryAfterSeconds !== undefined ? { retryAfterSeconds: r.retryAfterSeconds } : {}) };
    },
    close: () => client.close(),
  };
}
