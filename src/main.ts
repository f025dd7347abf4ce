import http from 'node:http';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { chmodSync, existsSync, mkdirSync, unlinkSync, readFileSync } from 'node:fs';
import type { Config } from './config/schema.js';
import { packageRoot } from './config/load.js';
import { openStore } from './store/open.js';
import type { FileSync } from './store/wal-sync.js';
import { loadOrCreateIdentity } from './identity/identity.js';
import { createLogger, type Logger } from './shared/logger.js';
import { DAY_MS, systemClock, type Clock } from './shared/clock.js';
import { EventService } from './events/service.js';
import { RefusalCounter } from './events/refusals.js';
import { AlertService } from './alerts/service.js';
import { TrustedTime } from './time/trusted-time.js';
import { timeOptions } from './time/options.js';
import { AccountService } from './accounts/service.js';
import { TokenService } from './tokens/service.js';
import { DeviceService } from './devices/service.js';
import { LicenseService } from './licenses/service.js';
import { PolicyService } from './policy/service.js';
import { IngestService } from './usage/ingest.js';
import { AckReader } from './usage/acks.js';
import { RumImporter } from './rum/import.js';
import { createDeviceHandler } from './device-api/handler.js';
import { inlineVerifier, PooledVerifier, type SignatureVerifier } from './device-api/verifier.js';
import { builtWorker } from './shared/worker.js';
import { createOperatorApp } from './http/operator-app.js';
import { close, combinedHandler, listen } from './http/server.js';
import { Scheduler } from './schedules.js';
import type { Services } from './services.js';
import { evaluateAckOverdue, evaluateExpiryAlerts } from './alerts/expiry.js';
import { ExchangeState } from './exchange/state.js';
import { ExportService } from './exchange/export.js';
import { ImportService } from './exchange/import.js';
import { EnrollmentService } from './exchange/enrollment.js';
import { ExchangeJobs } from './exchange/jobs.js';
import { KeyRotationService } from './exchange/key-rotation.js';

export const VERSION = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

export interface BuildOptions {
  clock?: Clock;
  logger?: Logger;
  /** The WAL's fdatasync (durability tests observe or fail it). */
  walSync?: FileSync;
}

export const databaseFile = (config: Config) => join(config.dataDir, 'outpost.db');
export const socketFile = (config: Config) => join(config.dataDir, 'outpost.sock');

/** Wires config → store → services. Opens the database (under its exclusive lock); starts nothing. */
export function buildServices(config: Config, opts: BuildOptions = {}): Services {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config.log.level);
  const db = openStore(databaseFile(config));
  try {
    const { identity, created } = loadOrCreateIdentity(config.dataDir);
    const events = new EventService(db, clock);
    const alerts = new AlertService(db, clock);
    const time = new TrustedTime(db, clock, alerts, events, timeOptions(config));
    const accounts = new AccountService(db, time, events);
    accounts.ensureInitialised();
    if (created) {
      events.append('collector.identity_created', 'system', identity.collectorId, null, { fingerprint: identity.fingerprint });
    }
    const refusals = new RefusalCounter(db, clock, events);
    const tokens = new TokenService(db, time, events, accounts);
    const licenses = new LicenseService(db, time, accounts, alerts, events);
    const policy = new PolicyService(db, config.policy);
    const devices = new DeviceService(
      db, time, events, alerts, accounts, tokens, licenses, config.device.staleAfterDays, () => policy.get().reportingIntervalDays,
    );
    const ingest = new IngestService(db, clock, devices.repo, licenses, config.device.maxFutureSkewSeconds * 1000, opts.walSync);
    const rum = new RumImporter(db, time, accounts, devices.repo, licenses, events);
    const state = new ExchangeState(db);
    const bundleDir = config.exchange.bundleDir;
    for (const sub of ['inbox', 'outbox', 'archive', 'rejected']) mkdirSync(join(bundleDir, sub), { recursive: true });
    const exporter = new ExportService(db, time, identity, state, accounts, events, alerts, {
      bundleDir, dataDir: config.dataDir, hashHostnames: config.exchange.hashHostnames, timeZone: config.time.zone,
    });
    const importer = new ImportService(db, time, time, identity, state, accounts, licenses, policy, events, alerts, bundleDir);
    const exchange = {
      state,
      exporter,
      importer,
      enrollment: new EnrollmentService(db, time, identity, state, accounts, events, bundleDir),
      rotation: new KeyRotationService(db, time, identity, state, accounts, events, { dataDir: config.dataDir, bundleDir }),
      jobs: new ExchangeJobs(db, time, state, exporter, importer, alerts, events, logger, { exportCron: config.exchange.exportCron, bundleDir, timeZone: config.time.zone }),
    };
    const services: Services = {
      config, db, identity, logger, systemClock: clock, time, events, refusals, alerts, accounts, tokens, devices, licenses,
      policy, ingest, acks: new AckReader(db), rum, exchange,
      evaluateAlerts: () => {
        time.check();
        devices.evaluate();
        licenses.evaluateAlerts();
        evaluateExpiryAlerts(services, config.alerts.expiryWarningDays * DAY_MS);
        evaluateAckOverdue(services);
      },
    };
    return services;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** The collector's whole request handler (device API and operator API), as tests and the server use it. */
export function createRequestHandler(services: Services, verifier: SignatureVerifier = inlineVerifier()) {
  const c = services.config;
  const device = createDeviceHandler({
    ...services,
    verifier,
    clock: services.systemClock,
    limits: {
      maxBodyBytes: c.http.maxBodyBytes,
      signatureWindowSeconds: c.device.signatureWindowSeconds,
      maxReportsPerBatch: c.device.maxReportsPerBatch,
      maxMeasurementsPerReport: c.device.maxMeasurementsPerReport,
    },
  });
  return combinedHandler(device, createOperatorApp(services, { transport: 'tcp', version: VERSION }));
}

export interface RunningCollector {
  services: Services;
  port: number;
  socketPath: string;
  stop(): Promise<void>;
}

/** The composition root: config → store → services → HTTP and local socket → schedules. */
export async function startCollector(config: Config, opts: BuildOptions = {}): Promise<RunningCollector> {
  const services = buildServices(config, opts);
  const { logger } = services;
  // Device signatures are checked on other cores where the built worker can run: one thread
  // for each core beyond the main thread's, up to four (one suffices on two cores).
  const verifyWorker = builtWorker(import.meta.url, './device-api/verify-worker.js');
  const threads = Math.max(1, Math.min(4, availableParallelism() - 1));
  const verifier = verifyWorker
    ? new PooledVerifier(verifyWorker, threads, (e, replaced) =>
        logger.error(replaced ? 'a signature worker died and was replaced' : 'signature workers keep dying; checks run on the main thread', { error: e.message }))
    : inlineVerifier();
  const tcp = http.createServer({ keepAliveTimeout: 65_000 }, createRequestHandler(services, verifier));
  const local = http.createServer(createOperatorApp(services, { transport: 'socket', version: VERSION }));
  const socketPath = socketFile(config);
  // We hold the database lock, so a socket file left here belongs to a process that is gone.
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const umask = process.umask(0o177); // the socket is born 0600: only this user may drive the collector
  try {
    await listen(local, socketPath);
  } finally {
    process.umask(umask);
  }
  chmodSync(socketPath, 0o600);
  await listen(tcp, config.http.port, config.http.host);
  const port = (tcp.address() as { port: number }).port;

  const logFailure = (job: string) => (e: unknown) => logger.error('scheduled job failed', { job, error: (e as Error).message });
  const scheduler = new Scheduler(
    [
      { name: 'alerts', cron: config.alerts.evaluateCron, run: () => services.evaluateAlerts() },
      { name: 'trusted-time', cron: '* * * * *', run: () => services.time.check() },
      { name: 'refusal-counts', cron: '* * * * *', run: () => services.refusals.flush() },
      { name: 'monthly-export', cron: config.exchange.exportCron, run: () => void services.exchange.jobs.runScheduledExport().catch(logFailure('monthly-export')) },
      {
        name: 'inbox',
        cron: `*/${Math.min(59, config.exchange.inboxPollSeconds)} * * * * *`,
        run: () => void services.exchange.jobs.pollInbox().catch(logFailure('inbox')),
      },
    ],
    logger,
    config.time.zone,
  );
  services.evaluateAlerts();
  await services.exchange.jobs.catchUp().catch(logFailure('monthly-export catch-up'));
  scheduler.start();
  const unwatchInbox = services.exchange.jobs.watchInbox();
  logger.info('collector started', {
    url: `http://${config.http.host}:${port}`, dataDir: config.dataDir, collectorId: services.identity.collectorId,
    fingerprint: services.identity.fingerprint, version: VERSION,
  });

  let stopped = false;
  return {
    services,
    port,
    socketPath,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Reverse order of start: schedules, listeners, queued writes, then the store.
      scheduler.stop();
      unwatchInbox();
      await Promise.all([close(tcp), close(local)]); // waits for requests in flight (an export, an import)
      await verifier.close();
      await services.exchange.jobs.idle(); // and for a scheduled export or an inbox import
      await services.ingest.drain();
      services.refusals.flush();
      services.time.check();
      services.db.close();
      if (existsSync(socketPath)) unlinkSync(socketPath);
      logger.info('collector stopped');
    },
  };
}
