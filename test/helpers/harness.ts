import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildServices, createRequestHandler } from '../../src/main.js';
import { ManualClock, type Clock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Services } from '../../src/services.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { listen, close } from '../../src/http/server.js';

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
  close(): Promise<void>;
}

let serial = 0;

/** Builds the real app (device + operator API) around a real SQLite file in a temp folder. */
export async function startHarness(opts: { clock?: ManualClock; config?: Record<string, unknown> } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
  const config = loadConfig({
    env: {},
    overrides: { dataDir: join(dir, 'data'), http: { port: 0 }, exchange: { bundleDir: join(dir, 'bundles') }, upstream: { dataDir: join(dir, 'upstream') }, ...(opts.config ?? {}) } as never,
  });
  const clock: Clock | undefined = opts.clock;
  const services = buildServices(config, { ...(clock ? { clock } : {}), logger: createLogger('error', true) });
  const server = http.createServer(createRequestHandler(services));
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const api = supertest(server);
  const defaultVa = services.accounts.list()[0]!.id;
  const now = () => (opts.clock ? opts.clock.now() : Date.now());
  const h: Harness = {
    dir, config, clock: opts.clock, services, url, api, defaultVa,
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
      await services.ingest.drain();
      services.db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export const DAY = 86_400_000;
export const seconds = (ms: number) => Math.floor(ms / 1000);
