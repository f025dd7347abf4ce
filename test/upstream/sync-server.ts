import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { signRequest, SYNC_BASE, BUNDLE_MEDIA_TYPE, HEADER } from '../../src/sync/protocol.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';

/** A collector (the real app) and `outpost upstream serve` run in this process, on 127.0.0.1. */
export interface SyncSite {
  h: Harness;
  up: RunningUpstream;
  /** The collector's usage bundle, as export writes it. */
  exportUsage(): Promise<string>;
  post(path: string, file: string | Buffer, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  /** A GET signed by the collector (or by `signer`), of a target with its query. */
  fetchSigned(target: string, signer?: Harness): Promise<{ status: number; bytes: Buffer; body: any; headers: Headers }>;
  /** A response bundle fetched with a long poll, applied by the collector's import. */
  applyResponse(bytes: Buffer): Promise<any>;
  close(): Promise<void>;
}

export async function enrollOver(h: Harness, up: RunningUpstream, account = 'ACME'): Promise<void> {
  const req = await h.services.exchange.enrollment.request(account, 'test');
  const added = await up.service.addCollector(req.file, { account, fingerprint: req.fingerprint });
  await h.services.exchange.enrollment.trust(added.responseFile!, up.service.identity.fingerprint, 'test');
}

export async function startSyncSite(upstream: Record<string, unknown> = {}): Promise<SyncSite> {
  const h = await startHarness();
  const config = loadConfig({ env: {}, overrides: { upstream: { dataDir: join(h.dir, 'upstream'), port: 0, host: '127.0.0.1', ...upstream }, shutdown: { graceSeconds: 2 } } as never });
  const up = await startUpstream(config, { logger: createLogger('error', true) });
  await enrollOver(h, up);
  up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 100, startsAt: 0, endsAt: null });
  let n = 0;
  const site: SyncSite = {
    h,
    up,
    exportUsage: async () => (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body.file as string,
    async post(path, file, headers = {}) {
      const { readFileSync } = await import('node:fs');
      const body = typeof file === 'string' ? readFileSync(file) : file;
      const r = await fetch(up.url + path, { method: 'POST', body, headers: { 'content-type': BUNDLE_MEDIA_TYPE, [HEADER.version]: '1', ...headers } });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
    },
    async fetchSigned(target, signer = h) {
      const id = signer.services.identity;
      const r = await fetch(up.url + target, { headers: signRequest({ collectorId: id.collectorId, keyId: id.fingerprint, privateKey: id.privateKey }, 'GET', target, Date.now()) });
      const bytes = Buffer.from(await r.arrayBuffer());
      let body: any = null;
      if (!(r.headers.get('content-type') ?? '').startsWith(BUNDLE_MEDIA_TYPE)) body = bytes.length ? JSON.parse(bytes.toString('utf8')) : null;
      return { status: r.status, bytes, body, headers: r.headers };
    },
    async applyResponse(bytes) {
      const file = join(h.dir, `fetched-${++n}.opb`);
      writeFileSync(file, bytes);
      const r = await h.api.post('/api/v1/exchange/import').send({ file });
      return { status: r.status, body: r.body };
    },
    async close() {
      await up.stop(0);
      await h.close();
    },
  };
  return site;
}

export const responseTarget = (bundleId: string, wait?: number) => `${SYNC_BASE}/usage/${bundleId}/response${wait === undefined ? '' : `?wait=${wait}`}`;
