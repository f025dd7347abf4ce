import http from 'node:http';
import { upstreamSocketFile } from './socket-file.js';
import https from 'node:https';
import { chmodSync, existsSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isLoopbackHost, type Config } from '../../config/schema.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { loadOrCreateIdentity, type Identity } from '../../identity/identity.js';
import type { Db } from '../../store/open.js';
import { drainable, listen } from '../../http/server.js';
import { limitConnectionsPerAddress } from '../../http/limits.js';
import { EXIT, boundedStop, drainListeners, shutdownSteps, within } from '../../lifecycle.js';
import { VERSION } from '../../main.js';
import { assertOwnerOnly } from '../../shared/secret-file.js';
import { openUpstreamStore } from '../store.js';
import { UpstreamService } from '../service.js';
import { Serial } from './serial.js';
import { SyncJobs } from './jobs.js';
import { operations } from './operations.js';
import { createAdminHandler } from './admin.js';
import { createSyncHandler } from './app.js';

export { upstreamSocketFile };

/** A start that failed, naming the step and its cause. */
export class UpstreamStartError extends Error {
  constructor(step: string, cause: unknown) {
    super(`the upstream could not start: ${step}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export interface UpstreamOptions {
  logger?: Logger;
  clock?: Clock;
  /** How long a stop waits for requests in flight (shutdown.graceSeconds unless given). */
  graceMs?: number;
}

export interface RunningUpstream {
  /** Where the sync protocol listens, with the real port: http(s)://host:port. */
  url: string;
  port: number;
  socketPath: string;
  service: UpstreamService;
  jobs: SyncJobs;
  /** The logger, where untilStopped looks for it. */
  services: { logger: Logger };
  /** Drains and stops: listeners closed, long polls answered, the running job given the grace, the store closed. Never rejects. */
  stop(graceMs?: number): Promise<void>;
  /** 0 after a clean stop, 1 otherwise. */
  readonly exitCode: Promise<number>;
}

function readPem(file: string, what: string, secret = false): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read the ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // As the collector's HTTPS key: a key others may read is refused, with the chmod to run.
  if (secret) assertOwnerOnly(file, what);
  return pem;
}

/** The listener the configuration asks for: HTTPS with a certificate and key, plain HTTP only on loopback unless allowed. */
function tlsOptions(u: Config['upstream']): { cert: Buffer; key: Buffer } | undefined {
  if (Boolean(u.certFile) !== Boolean(u.keyFile)) {
    throw new UpstreamStartError('TLS', `upstream.certFile and upstream.keyFile go together: ${u.certFile ? 'keyFile' : 'certFile'} is not set`);
  }
  if (u.certFile) {
    try {
      return { cert: readPem(u.certFile, 'certificate (upstream.certFile)'), key: readPem(u.keyFile, 'private key (upstream.keyFile)', true) };
    } catch (e) {
      throw new UpstreamStartError('TLS', e);
    }
  }
  if (!isLoopbackHost(u.host) && !u.allowPlainHttp) {
    throw new UpstreamStartError(
      'TLS',
      `plain HTTP on ${u.host}, which is not a loopback address, would carry entitlements in clear: set upstream.certFile and upstream.keyFile, or upstream.allowPlainHttp for a network you trust`,
    );
  }
  return undefined;
}

/**
 * `outpost upstream serve`: the reference upstream as a service, the one owner of its store.
 * The sync protocol on upstream.host:port (HTTPS when configured), the operator's commands on
 * a 0600 unix socket in its data folder, and the queue of posted bundles, resumed from where
 * a previous process left it.
 */
export async function startUpstream(config: Config, opts: UpstreamOptions = {}): Promise<RunningUpstream> {
  const u = config.upstream;
  const tls = tlsOptions(u);
  const logger = opts.logger ?? createLogger(config.log.level, { format: config.log.format });
  const clock = opts.clock ?? systemClock;
  const dataDir = resolve(u.dataDir);
  const socketPath = upstreamSocketFile(dataDir);
  const graceMs = opts.graceMs ?? config.shutdown.graceSeconds * 1000;

  let db: Db;
  try {
    db = openUpstreamStore(dataDir);
  } catch (e) {
    throw new UpstreamStartError(`open the store in ${dataDir}`, e);
  }
  let identity: Identity;
  try {
    identity = loadOrCreateIdentity(dataDir, 'upstream').identity;
  } catch (e) {
    db.close();
    throw new UpstreamStartError(`load the upstream's key in ${dataDir}`, e);
  }
  const service = new UpstreamService(db, clock, identity, join(dataDir, 'outbox'), dataDir);
  const serial = new Serial();
  const jobs = new SyncJobs(service, serial, logger, dataDir);
  const drains: ((graceMs: number) => Promise<number>)[] = [];
  let resolveExit!: (code: number) => void;
  const exitCode = new Promise<number>((r) => (resolveExit = r));
  let stopping: Promise<void> | undefined;

  async function shutdown(grace: number): Promise<boolean> {
    const deadline = Date.now() + grace;
    const steps = shutdownSteps(logger);
    const step = steps.step;
    // Waiting fetches answer 202 at once; the running job may finish within the grace.
    jobs.halt();
    await step('listeners', () => drainListeners(drains, grace, logger));
    await step('sync jobs', async () => {
      // A job still counting is abandoned, as a crash would leave it: its transaction is not
      // committed, and it runs again at the next start.
      if (!(await within(jobs.idle(), deadline - Date.now()))) logger.warn('a sync job still running was abandoned; it runs again at the next start');
    });
    await step('write queue', () => within(serial.run(() => undefined), Math.max(0, deadline - Date.now())));
    await step('store', () => db.close());
    await step('local socket', () => existsSync(socketPath) && unlinkSync(socketPath));
    return steps.clean;
  }

  function stop(grace = graceMs): Promise<void> {
    return (stopping ??= (async () => resolveExit((await boundedStop(shutdown, grace, logger, 'upstream')) ? EXIT.stopped : EXIT.failed))());
  }

  const phase = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw new UpstreamStartError(name, e);
    }
  };

  try {
    // Uploads cut by a previous process were never accepted.
    rmSync(join(dataDir, 'incoming'), { recursive: true, force: true });
    await phase('resume the queued sync jobs', () => jobs.recover());
    const handler = createSyncHandler(service, jobs, serial, logger, {
      dataDir,
      maxBundleBytes: u.maxBundleBytes,
      maxWaitSeconds: u.maxWaitSeconds,
      maxUploadingBytes: u.maxUploadingBytes,
      bodyTimeoutSeconds: u.bodyTimeoutSeconds,
      maxPendingEnrollments: u.maxPendingEnrollments,
    });
    const serverOptions = {
      keepAliveTimeout: 65_000,
      // A bundle of hundreds of MB may take minutes to arrive on a slow link; its headers may not.
      requestTimeout: 30 * 60_000,
      headersTimeout: 60_000,
      connectionsCheckingInterval: 1000,
    };
    const tcp = tls ? https.createServer({ ...serverOptions, ...tls }, handler) : http.createServer(serverOptions, handler);
    // Anyone who reaches the port may post (a bundle is judged by its signature, once it has
    // arrived): one address holding many connections open is cut off as the collector does.
    limitConnectionsPerAddress(tcp, 64);
    const local = http.createServer(createAdminHandler(operations(service, jobs), serial, logger));
    drains.push(drainable(local), drainable(tcp));
    // We hold the store's lock, so a socket file left here belongs to a process that is gone.
    await phase(`listen on the local socket ${socketPath}`, async () => {
      if (existsSync(socketPath)) unlinkSync(socketPath);
      const umask = process.umask(0o177);
      try {
        await listen(local, socketPath);
      } finally {
        process.umask(umask);
      }
      chmodSync(socketPath, 0o600);
    });
    await phase(`listen on ${u.host}:${u.port} (upstream.host, upstream.port)`, () => listen(tcp, u.port, u.host));
    const port = (tcp.address() as { port: number }).port;
    const host = u.host.includes(':') && !u.host.startsWith('[') ? `[${u.host}]` : u.host;
    const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
    jobs.kick();
    logger.info('upstream started', { url, dataDir, upstreamId: identity.collectorId, fingerprint: identity.fingerprint, version: VERSION });
    return { url, port, socketPath, service, jobs, services: { logger }, stop, exitCode };
  } catch (e) {
    logger.error('the upstream could not start', { error: (e as Error).message });
    await stop(0);
    throw e;
  }
}
