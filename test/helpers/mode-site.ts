import { mkdirSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import { expect } from 'vitest';
import { envFor, serve, tempDataDir, type ServerProcess } from './processes.js';
import { serveUpstream, type UpstreamProcess } from './upstream-process.js';
import { acksApplied, cliJson, collectorAcks, Fleet, freePort, readDb, upstreamReportIds } from './sync-site.js';
import { TAG } from './harness.js';

export interface Gate {
  url: string;
  /** While set, a fetch of an answer (GET …/usage/<id>/response) has its connection dropped as it arrives. */
  blockAnswers: boolean;
  close(): Promise<void>;
}

/**
 * An HTTP relay between the collector and the upstream that can refuse the fetch of an answer,
 * so that a part is posted and processed upstream but its answer never reaches the collector:
 * the part stays in flight, as after a cut between the upstream's apply and its reply.
 */
export async function startGate(targetPort: number): Promise<Gate> {
  const server: Server = createServer((req, res) => {
    if (gate.blockAnswers && /\/usage\/[^/]+\/response/.test(req.url ?? '')) {
      req.socket.destroy();
      return;
    }
    const out = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  });
  const gate: Gate = {
    url: '',
    blockAnswers: false,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  gate.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return gate;
}

export interface ModeSite {
  dir: string;
  env: Record<string, string>;
  upDir: string;
  inbox: string;
  rejected: string;
  up: UpstreamProcess;
  gate: Gate;
  fleet: Fleet;
  readonly collector: ServerProcess | undefined;
  /** (Re)starts the collector in `mode` on the same store and port; `extra` adds OUTPOST_* settings. */
  start(mode: 'connected' | 'disconnected', extra?: Record<string, string>): Promise<void>;
  stopCollector(): Promise<void>;
  status(): Promise<any>;
  /** Usage bundles the collector has written (sync parts and exports alike). */
  outbound(): number;
  /** The invariant after every step: the upstream counted each report once, and each was ACKed once. */
  expectExact(): void;
  close(): Promise<void>;
}

/**
 * A site for the mode-switch tests: `outpost upstream serve` (plain HTTP on 127.0.0.1) behind a
 * gate, and the collector as a process that starts on the air gap, enrolled by files as today,
 * with three registered devices.
 */
export async function startModeSite(): Promise<ModeSite> {
  const dir = tempDataDir();
  mkdirSync(dir, { recursive: true });
  const env = envFor(dir);
  const upDir = env.OUTPOST_UPSTREAM_DATA_DIR!;
  const colPort = await freePort();
  const up = await serveUpstream(upDir);
  const gate = await startGate(Number(new URL(up.url).port));
  let col: ServerProcess | undefined;
  const site: ModeSite = {
    dir, env, upDir, up, gate,
    inbox: join(env.OUTPOST_EXCHANGE_BUNDLE_DIR!, 'inbox'),
    rejected: join(env.OUTPOST_EXCHANGE_BUNDLE_DIR!, 'rejected'),
    fleet: undefined as unknown as Fleet,
    get collector() {
      return col;
    },
    async start(mode, extra = {}) {
      await col?.stop();
      col = await serve(dir, {
        OUTPOST_EXCHANGE_MODE: mode,
        OUTPOST_EXCHANGE_CONNECTION_URL: gate.url,
        OUTPOST_EXCHANGE_RETRY_ATTEMPTS: '2',
        OUTPOST_EXCHANGE_RETRY_BASE_SECONDS: '0',
        OUTPOST_EXCHANGE_INBOX_POLL_SECONDS: '1',
        OUTPOST_SHUTDOWN_GRACE_SECONDS: '1',
        OUTPOST_HTTP_PORT: String(colPort),
        ...extra,
      });
    },
    async stopCollector() {
      await col?.stop();
      col = undefined;
    },
    status: () => cliJson(['sync', 'status'], env),
    outbound: () => readDb(join(dir, 'outpost.db'), (db) => (db.prepare("SELECT count(*) AS n FROM bundles WHERE direction = 'out' AND kind = 'usage'").get() as { n: number }).n),
    expectExact() {
      expect(upstreamReportIds(upDir)).toEqual(site.fleet.expected);
      const n = site.fleet.sent.length;
      expect(collectorAcks(dir)).toEqual({ reports: n, pending: 0, accepted: n, rejected: 0 });
      expect(acksApplied(dir)).toBe(n);
    },
    async close() {
      await col?.stop();
      await gate.close();
      await up.stop();
    },
  };
  await site.start('disconnected');
  const req = await cliJson(['enroll', '--account', 'ACME'], env);
  const added = await cliJson(['upstream', 'collector', 'add', req.file, '--account', 'ACME', '--fingerprint', req.fingerprint], env);
  expect((await cliJson(['enroll', 'confirm', added.responseFile, '--fingerprint', added.upstreamFingerprint], env)).pinned).toBe(true);
  await cliJson(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--name', 'DNA', '--quantity', '50'], env);
  site.fleet = await Fleet.register(col!.url, env, 3, 'MODE');
  return site;
}

/** Polls `cond` every 100 ms; fails naming `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

