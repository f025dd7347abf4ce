import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { Agent, request } from 'undici';
import type { Config } from '../config/schema.js';
import type { Identity } from '../identity/identity.js';
import type { Clock } from '../shared/clock.js';
import { BUNDLE_MEDIA_TYPE, HEADER, SYNC_VERSION, signRequest } from './protocol.js';
import type { SyncTransport } from './transport.js';

/** The connection to the configured Outpost upstream. */
export function connectUpstream(config: Config, identity: Identity, clock: Clock): SyncTransport {
  const c = config.exchange.connection;
  const base = c.url.replace(/\/+$/, '');
  const dispatcher = new Agent({ connect: { timeout: c.connectTimeoutSeconds * 1000 }, headersTimeout: c.headersTimeoutSeconds * 1000, bodyTimeout: c.bodyTimeoutSeconds * 1000 });
  const signer = { collectorId: identity.collectorId, keyId: identity.fingerprint, privateKey: identity.privateKey };
  const fail = (e: unknown) => {
    throw Object.assign(new Error(`the upstream at ${base} could not be reached: ${(e as Error).message}`), { code: 'unreachable', retryable: true });
  };
  const json = async (body: { text(): Promise<string> }) => {
    const t = await body.text();
    try {
      return t ? (JSON.parse(t) as unknown) : null;
    } catch {
      return { error: { code: 'not_outpost', message: `not an Outpost reply: ${JSON.stringify(t.slice(0, 80))}` } };
    }
  };
  return {
    async hello() {
      const r = await request(`${base}/sync/v1/hello`, { dispatcher, headers: { [HEADER.version]: String(SYNC_VERSION) } }).catch(fail);
      return (await json(r!.body)) as Awaited<ReturnType<SyncTransport['hello']>>;
    },
    async postBundle(path, file) {
      const r = await request(`${base}${path}`, {
        method: 'POST', dispatcher, body: createReadStream(file),
        headers: { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': String(statSync(file).size), [HEADER.version]: String(SYNC_VERSION) },
      }).catch(fail);
      return { status: r!.statusCode, json: await json(r!.body) };
    },
    async fetchBundle(path, o) {
      const r = await request(`${base}${path}`, { dispatcher, headers: signRequest(signer, 'GET', path, clock.now()) }).catch(fail);
      if (r!.statusCode === 200 && String(r!.headers['content-type']).startsWith(BUNDLE_MEDIA_TYPE)) {
        let n = 0;
        const bound = new Transform({
          transform(chunk: Buffer, _e, cb) {
            n += chunk.length;
            cb(n > o.maxBytes ? new Error(`the reply is larger than ${o.maxBytes} bytes`) : null, chunk);
          },
        });
        await pipeline(r!.body, bound, createWriteStream(o.toFile, { mode: 0o600 })).catch(fail);
        return { status: 200, file: o.toFile };
      }
      const ra = Number(r!.headers['retry-after']);
      return { status: r!.statusCode, json: await json(r!.body), ...(Number.isFinite(ra) ? { retryAfterSeconds: ra } : {}) };
    },
    close: () => dispatcher.close(),
  };
}
