import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildServices, createRequestHandler } from '../../src/main.js';
import { ManualClock, type Clock } from '../../src/shared/clock.js';
import { capturingLogger, recordDataDir, recordKeysOf, tapSecrets, watchServices } from './secrets.js';
import type { Services } from '../../src/services.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { listen, close } from '../../src/http/server.js';
import { inlineVerifier, PooledVerifier, type SignatureVerifier } from '../../src/device-api/verifier.js';
import { builtWorker } from '../../src/shared/worker.js';
import { packageRoot } from '../../src/config/load.js';
import { pathToFileURL } from 'node:url';

export const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
export const TAG2 = 'regid.2017-03.com.cisco.advantagek9,1.0_bd1da96e-ec1d-412b-a50e-53846b347d53';

export interface Harness {
  dir: string;
  config: Config;
  clock: ManualClock | undefined;
  services: Services;
  url: string;
  api: ReturnType<typeof supertest>;
  defaultVa: string;
  /** A fresh token secret for a VA (default VA if none), made through the operator API. */
  token(opts?: { vaId?: string; maxUses?: number; expiresInDays?: number }): Promise<string>;
  device(serial?: string, pid?: string): SimulatedDevice;
  /** A device registered with a fresh token. */
  registered(serial?: string, vaId?: string): Promise<SimulatedDevice>;
  count(sql: string, ...args: unknown[]): number;
  /** The signature verifier the device API uses. */
  verifier: SignatureVerifier;
  close(): Promise<void>;
}

export interface HarnessOptions {
  clock?: ManualClock;
  config?: Record<string, unknown>;
  /**
   * 'inline' (default) checks signatures on the main thread; 'pooled' starts the production
   * PooledVerifier on the built worker (dist/, `npm run build`), closed with the harness; a
   * verifier given here is the caller's to close (one pool can serve many harnesses).
   */
  verifier?: 'inline' | 'pooled' | SignatureVerifier;
  /** Wraps the verifier, e.g. to hold a check open while an operator acts. */
  wrapVerifier?: (v: SignatureVerifier) => SignatureVerifier;
}

/** Worker failures of pools made by pooledVerifier(): a pool that fell back inline tests nothing. */
export const poolFailures: Error[] = [];

/**
 * The production signature pool, as startCollector builds it, on the built worker module. Tests
 * run the TypeScript sources, which a worker cannot load, so the worker comes from dist/.
 */
export function pooledVerifier(threads = 1): PooledVerifier {
  const worker = builtWorker(pathToFileURL(join(packageRoot, 'dist', 'main.js')).href, './device-api/verify-worker.js');
  if (!worker) throw new Error('dist/device-api/verify-worker.js is missing: run `npm run build` first');
  return new PooledVerifier(worker, threads, (e) => poolFailures.push(e));
}

let serial = 0;

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
function mergeDeep(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? mergeDeep(out[k] as Plain, v) : v;
  return out;
}

/** Builds the real app (device + operator API) around a real SQLite file in a temp folder. */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
  const config = loadConfig({
    env: {},
    // Merged key by key: a test that sets one exchange limit must keep the temp bundle folder
    // (a shallow spread once sent its bundles into the project's own sync-bundles/).
    overrides: mergeDeep({ dataDir: join(dir, 'data'), http: { port: 0 }, exchange: { bundleDir: join(dir, 'bundles') }, upstream: { dataDir: join(dir, 'upstream') } }, opts.config ?? {}) as never,
  });
  const clock: Clock | undefined = opts.clock;
  const services = buildServices(config, { ...(clock ? { clock } : {}), logger: capturingLogger() });
  // Checked at the end of the test file (test/setup.ts): no secret in a log line or an answer that did not create it.
  watchServices(services);
  recordDataDir(config.dataDir);
  recordDataDir(config.upstream.dataDir);
  const owned = opts.verifier === undefined || opts.verifier === 'inline' || opts.verifier === 'pooled';
  const base = opts.verifier === 'pooled' ? pooledVerifier() : typeof opts.verifier === 'object' ? opts.verifier : inlineVerifier();
  const verifier = opts.wrapVerifier ? opts.wrapVerifier(base) : base;
  const server = http.createServer(tapSecrets(createRequestHandler(services, verifier)));
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const api = supertest(server);
  const defaultVa = services.accounts.list()[0]!.id;
  const now = () => (opts.clock ? opts.clock.now() : Date.now());
  const h: Harness = {
    dir, config, clock: opts.clock, services, url, api, defaultVa, verifier,
    async token(o = {}) {
      const res = await api.post('/api/v1/tokens').send({
        vaId: o.vaId ?? defaultVa, description: 'test', maxUses: o.maxUses ?? 100, expiresInDays: o.expiresInDays ?? 30,
      });
      if (res.status !== 201) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.secret as string;
    },
    device(s = `SN${process.pid}X${++serial}`, pid = 'C9300-24T') {
      return new SimulatedDevice(url, services.identity.collectorId, { pid, serial: s }, now);
    },
    async registered(s, vaId) {
      const d = h.device(s);
      const r = await d.register(await h.token({ vaId }));
      if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
      return d;
    },
    count(sql, ...args) {
      return Number(Object.values(services.db.prepare(sql).get(...args) as object)[0]);
    },
    async close() {
      await close(server);
      if (owned) await base.close();
      await services.ingest.drain();
      services.db.close();
      recordKeysOf(config.dataDir);
      recordKeysOf(config.upstream.dataDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export const DAY = 86_400_000;
export const seconds = (ms: number) => Math.floor(ms / 1000);
