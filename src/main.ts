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
import { CheckpointService } from './events/checkpoints.js';
import { AlertService } from './alerts/service.js';
import { TrustedTime } from './time/trusted-time.js';
import { timeOptions } from './time/options.js';
import { floorFile } from './time/floor-file.js';
import { AccountService } from './accounts/service.js';
import { TokenService } from './tokens/service.js';
import { DeviceService } from './devices/service.js';
import { LicenseService } from './licenses/service.js';
import { repairFuturePeriods } from './licenses/future-periods.js';
import { PolicyService } from './policy/service.js';
import { IngestService } from './usage/ingest.js';
import { AckReader } from './usage/acks.js';
import { Destinations, destinationPlan } from './usage/destinations.js';
import { RumImporter } from './rum/import.js';
import { createDeviceHandler } from './device-api/handler.js';
import { inlineVerifier, PooledVerifier, type SignatureVerifier } from './device-api/verifier.js';
import { builtWorker } from './shared/worker.js';
import { createOperatorApp } from './http/operator-app.js';
import { answerClientErrors, combinedHandler, drainable, listen } from './http/server.js';
import { BodyBudget, limitConnectionsPerAddress } from './http/limits.js';
import { deviceRateLimits } from './http/rate-limit.js';
import { readPasswordFile } from './sync/dispatcher.js';
import { createTlsListener, httpsWanted, readTlsPair, type TlsListener } from './http/tls.js';
import { EXIT, FATAL_GRACE_MS, StartError, boundedStop, drainListeners, shutdownSteps, within } from './lifecycle.js';
import { Scheduler } from './schedules.js';
import type { Services } from './services.js';
import { evaluateAckOverdue, evaluateExpiryAlerts } from './alerts/expiry.js';
import { ExchangeState } from './exchange/state.js';
import { ExportService } from './exchange/export.js';
import { ImportService } from './exchange/import.js';
import { EnrollmentService } from './exchange/enrollment.js';
import { ExchangeJobs } from './exchange/jobs.js';
import { KeyRotationService } from './exchange/key-rotation.js';
import { SyncService } from './sync/service.js';
import { SyncState } from './sync/sync-state.js';
import { connectUpstream } from './sync/connect.js';
import { SyncEnrollment } from './sync/enroll.js';
import { PolledDeviceService } from './cisco/polled-devices.js';
import { SecretBox } from './cisco/secrets.js';
import { DevicePoller } from './cisco/poller.js';
import { PortalExport } from './cisco/portal-export.js';
import { PortalAcks } from './cisco/portal-acks.js';
import { LoginThrottle } from './http/rate-limit.js';
import { SessionService } from './users/sessions.js';
import { UserService } from './users/service.js';
import { CssmClient } from './cssm/client.js';
import { CloudCredentials } from './cssm/credentials.js';
import { CloudSync } from './cssm/cloud-sync.js';
import { CloudUsage } from './cssm/usage.js';
import { CloudPositions } from './cssm/positions.js';
import { CloudReservations } from './cssm/reservations.js';
import type { UpstreamSync } from './sync/upstream-sync.js';
import { AckDelivery } from './cisco/ack-delivery.js';
import { CollectorMetrics } from './metrics/collector-metrics.js';
import { Readiness } from './metrics/readiness.js';
import { BackupService } from './backup/service.js';
import { ReportPruner } from './retention/pruner.js';
import { UsageHistory } from './history/service.js';
import { DeviceRequestSummary } from './device-api/request-summary.js';

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
  const logger = opts.logger ?? createLogger(config.log.level, { format: config.log.format });
  const db = openStore(databaseFile(config));
  try {
    const { identity, created } = loadOrCreateIdentity(config.dataDir);
    const events = new EventService(db, clock);
    const alerts = new AlertService(db, clock, events);
    const time = new TrustedTime(db, clock, alerts, events, timeOptions(config), floorFile(config.dataDir));
    const accounts = new AccountService(db, time, events);
    accounts.ensureInitialised();
    if (created) {
      events.append('collector.identity_created', 'system', identity.collectorId, null, { fingerprint: identity.fingerprint });
    }
    const refusals = new RefusalCounter(db, clock, events);
    const tokens = new TokenService(db, time, events, accounts);
    const licenses = new LicenseService(db, time, accounts, alerts, events);
    const policy = new PolicyService(db, config.policy);
    repairFuturePeriods(db, licenses.ledger, alerts, events, time.now(), Math.max(config.device.maxFutureSkewSeconds, config.rum.maxFutureSkewSeconds) * 1000);
    const devices = new DeviceService(
      db, time, events, alerts, accounts, tokens, licenses, config.device.staleAfterDays, () => policy.get().reportingIntervalDays,
    );
    const destinations = new Destinations(db, destinationPlan({ upstreamKind: config.exchange.upstream.kind, mode: config.exchange.mode, portal: config.cisco.portal }));
    destinations.reconcile();
    const ingest = new IngestService(db, clock, devices.repo, licenses, destinations, config.device.maxFutureSkewSeconds * 1000, opts.walSync);
    const rum = new RumImporter(db, time, accounts, devices.repo, licenses, events, destinations);
    const state = new ExchangeState(db);
    const bundleDir = config.exchange.bundleDir;
    for (const sub of ['inbox', 'outbox', 'archive', 'rejected']) mkdirSync(join(bundleDir, sub), { recursive: true });
    const checkpoints = new CheckpointService(db, clock, identity, events, config.dataDir);
    const exporter = new ExportService(db, time, identity, state, accounts, events, alerts, {
      bundleDir, dataDir: config.dataDir, hashHostnames: config.exchange.hashHostnames, timeZone: config.time.zone,
      // Every export and sync part signs a checkpoint; with Cisco as upstream it stays on the site.
      checkpoint: (reason) => {
        const c = checkpoints.make(reason);
        return config.exchange.upstream.kind === 'outpost' ? c : null;
      },
    });
    const importer = new ImportService(db, time, time, identity, state, accounts, licenses, policy, events, alerts, bundleDir, {
      maxBytes: config.exchange.maxResponseBytes, maxRatio: config.exchange.maxResponseRatio,
    });
    const exchange = {
      state,
      exporter,
      importer,
      enrollment: new EnrollmentService(db, time, identity, state, accounts, events, bundleDir),
      rotation: new KeyRotationService(db, time, identity, state, accounts, events, { dataDir: config.dataDir, bundleDir }),
      jobs: new ExchangeJobs(db, time, state, exporter, importer, alerts, events, logger, { exportCron: config.exchange.exportCron, bundleDir, timeZone: config.time.zone }),
    };
    const x = config.exchange;
    const connect = () => connectUpstream(config, identity, time);
    const secretBox = new SecretBox(config.dataDir);
    const polled = new PolledDeviceService(db, time, secretBox, accounts, events);
    const deviceCa = DevicePoller.caFrom(config.cisco.caFile);
    const ackDelivery = new AckDelivery(db, time, polled, events, { timeoutMs: config.cisco.timeoutSeconds * 1000, ca: deviceCa });
    const sync = new SyncService(db, time, state, new SyncState(db), exporter, importer, alerts, events, logger, connect, {
      mode: x.mode, url: x.connection.url, syncCron: x.syncCron, timeZone: config.time.zone, bundleDir,
      maxReportsPerPart: x.maxReportsPerPart, maxBytesPerPart: x.maxBytesPerPart, maxResponseBytes: x.maxResponseBytes, retry: x.retry,
      waitSeconds: 20, maxProcessingSeconds: 1800, clockSkewMs: config.device.signatureWindowSeconds * 1000,
      syncOverdueHours: x.syncOverdueHours, unreachableAlertHours: x.unreachableAlertHours,
    });
    const cloud = config.cisco.cloud;
    const cloudCa = CssmClient.caFrom(cloud.caFile);
    const credentials = new CloudCredentials(db, time, secretBox, events);
    const positions = new CloudPositions(db, time, licenses, events, cloud.licenseTags);
    // One way to reach Cisco's cloud, for the sync and the reservations alike.
    const cloudClient = (signal: AbortSignal) =>
      new CssmClient({
        tokenUrl: cloud.tokenUrl, apiUrl: cloud.apiUrl, clientId: cloud.clientId, clientSecret: () => credentials.secret(), ca: cloudCa,
        timeoutMs: cloud.timeoutSeconds * 1000, attempts: x.retry.attempts, baseSeconds: x.retry.baseSeconds, maxSeconds: x.retry.maxSeconds, signal, logger,
      });
    const cloudSync = new CloudSync(
      db, time, accounts, new CloudUsage(db, time, events, ackDelivery, logger), positions,
      credentials, alerts, events, logger, cloudClient,
      {
        mode: x.mode, syncCron: x.syncCron, timeZone: config.time.zone, apiUrl: cloud.apiUrl, clientId: cloud.clientId, domain: cloud.domain,
        virtualAccounts: cloud.virtualAccounts, pollMs: cloud.pollSeconds * 1000, maxPollMs: cloud.maxPollMinutes * 60_000, syncOverdueHours: x.syncOverdueHours,
      },
    );
    const users = new UserService(db, time, accounts, events);
    const upstreamSync: UpstreamSync = x.upstream.kind === 'cisco' ? cloudSync : sync;
    const metrics = new CollectorMetrics({ config, db, clock, licenses, ingest, refusals, events, destinations });
    // After the metrics, whose ingest and refusal observers it chains to.
    const deviceRequests = new DeviceRequestSummary(logger, () => clock.now()).observe(ingest, refusals);
    const services: Services = {
      config, db, identity, logger, systemClock: clock, time, events, refusals, checkpoints, alerts, accounts, tokens, devices, licenses,
      history: new UsageHistory(db, time, accounts, licenses, alerts, { zone: config.time.zone, ...config.forecast }),
      policy, ingest, acks: new AckReader(db), destinations, rum, exchange, sync, upstreamSync, users, sessions: new SessionService(db, time, events, (id) => users.grantsOf(id), config.sessions), loginThrottle: new LoginThrottle(config.rate, () => clock.now()),
      cloud: { sync: cloudSync, credentials, positions, reservations: new CloudReservations(db, time, accounts, polled, events, credentials, logger, cloudClient, {
        clientId: cloud.clientId, domain: cloud.domain, virtualAccounts: cloud.virtualAccounts, pollMs: cloud.pollSeconds * 1000, maxPollMs: cloud.maxPollMinutes * 60_000,
        device: { timeoutMs: config.cisco.timeoutSeconds * 1000, ca: deviceCa },
      }) },
      syncEnrollment: new SyncEnrollment(identity, exchange.enrollment, connect, bundleDir, x.connection.url),
      cisco: { devices: polled, poller: new DevicePoller(db, time, polled, rum, events, logger, {
        concurrency: config.cisco.concurrency, timeoutMs: config.cisco.timeoutSeconds * 1000, retries: config.cisco.retries, ca: deviceCa,
        rum: { maxElements: config.rum.maxElements, maxFutureSkewMs: config.rum.maxFutureSkewSeconds * 1000, staleAfterDays: config.device.staleAfterDays },
      }), portal: new PortalExport(db, time, identity, events, bundleDir, destinations.used().includes('portal')),
      acks: new PortalAcks(db, time, events, ackDelivery), delivery: ackDelivery },
      metrics,
      readiness: new Readiness(db, config.dataDir, config.ready.minFreeDiskMb),
      backups: new BackupService(
        { db, dataDir: config.dataDir, collectorId: identity.collectorId, version: VERSION, now: () => time.now(), floorMs: () => time.now() },
        events, logger, config.backup,
      ),
      retention: new ReportPruner(db, time, events, ingest.commits, config.retention),
      deviceRequests,
      evaluateAlerts: async () => {
        time.check();
        // The device evaluation runs in slices on a large store; the rest is quick and goes on meanwhile.
        const devicesDone = devices.evaluate();
        licenses.evaluateAlerts();
        evaluateExpiryAlerts(services, config.alerts.expiryWarningDays * DAY_MS);
        evaluateAckOverdue(services);
        upstreamSync.evaluateAlerts();
        await devicesDone;
      },
      fatal: (cause) => logger.error('fatal error', { error: cause.message }),
    };
    // A failed WAL flush leaves the store's state on disk unknown: only a restart (SQLite's
    // recovery from the WAL) makes it known again. Looked up at the call: the server replaces fatal.
    ingest.commits.onFailure((cause) => services.fatal(cause));
    return services;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** A sample first: a collector that runs for less than the sampler's five minutes still records its day. */
function sampleAndForecast(services: Services): void {
  services.history.sample();
  services.history.evaluateAlerts();
}

/** The collector's whole request handler (device API and operator API), as tests and the server use it. */
export function createRequestHandler(services: Services, verifier: SignatureVerifier = inlineVerifier()) {
  const c = services.config;
  const device = createDeviceHandler({
    ...services,
    verifier,
    clock: services.systemClock,
    budget: new BodyBudget(c.http.maxBufferedBytes),
    rate: deviceRateLimits(c.rate, () => services.systemClock.now()),
    limits: {
      maxBodyBytes: c.http.maxBodyBytes,
      signatureWindowSeconds: c.device.signatureWindowSeconds,
      maxReportsPerBatch: c.device.maxReportsPerBatch,
      maxMeasurementsPerReport: c.device.maxMeasurementsPerReport,
    },
  });
  services.readiness.watchWorkers(verifier);
  return combinedHandler(services.deviceRequests.wrap(services.metrics.timed(device)), createOperatorApp(services, { transport: 'tcp', version: VERSION }));
}

/**
 * The collector's TCP server as production runs it (tests that attack its limits build the
 * same): the whole handler, a bounded time for a request to arrive, and a bounded number of
 * connections per address.
 */
export function createTcpServer(services: Services, verifier?: SignatureVerifier, handler = createRequestHandler(services, verifier)): http.Server {
  const { http: h } = services.config;
  const server = http.createServer(serverTimeouts(h), handler);
  limitConnectionsPerAddress(server, h.maxConnectionsPerAddress);
  answerClientErrors(server);
  return server;
}

/** The HTTP and HTTPS listeners' timeouts. */
function serverTimeouts(h: Config['http']) {
  return {
    keepAliveTimeout: 65_000,
    // A request's headers and body must arrive within this; a stalled body is cut (408).
    requestTimeout: h.bodyTimeoutSeconds * 1000,
    headersTimeout: Math.min(h.bodyTimeoutSeconds * 1000, 60_000),
    // How often Node checks those timeouts: a second, so a limit in seconds means seconds.
    connectionsCheckingInterval: 1000,
    // A TLS handshake that stalls holds a connection as a stalled body would.
    handshakeTimeout: Math.min(h.bodyTimeoutSeconds * 1000, 60_000),
  };
}

export interface RunningCollector {
  services: Services;
  port: number;
  socketPath: string;
  /**
   * Drains and stops (SIGTERM's path): no new connections, requests in flight given the grace
   * period (`shutdown.graceSeconds` unless given) and then cut, schedules and the inbox watch
   * stopped, queued writes committed, the store closed. Never rejects; `exitCode` says how it went.
   */
  stop(graceMs?: number): Promise<void>;
  /**
   * Settles once the collector has stopped, with the exit code for `outpost serve`: 0 after a
   * clean stop, 1 after a fatal error (services.fatal), a step that failed or a stop that overran.
   */
  readonly exitCode: Promise<number>;
  /** SIGHUP: the HTTPS certificate and key are read again (see TlsListener.reload). */
  reload(): void;
}

/**
 * The composition root: config → store → services → HTTP and local socket → schedules. A start
 * that fails half way closes what it had opened (listeners, socket file, workers, the store and
 * its lock) and rejects with a StartError naming the step and the cause.
 */
export async function startCollector(config: Config, opts: BuildOptions = {}): Promise<RunningCollector> {
  const services = buildServices(config, opts);
  const { logger } = services;
  const socketPath = socketFile(config);
  const graceMs = config.shutdown.graceSeconds * 1000;

  // What start has opened so far; the stop undoes it, whether the start finished or not.
  let verifier: SignatureVerifier | undefined;
  let scheduler: Scheduler | undefined;
  let unwatchInbox: (() => void) | undefined;
  let secure: TlsListener | undefined;
  const drains: ((graceMs: number) => Promise<number>)[] = [];

  let stopping: Promise<void> | undefined;
  let failure: Error | undefined;
  let started = false;
  let resolveExit!: (code: number) => void;
  const exitCode = new Promise<number>((r) => (resolveExit = r));

  async function shutdown(grace: number): Promise<boolean> {
    const deadline = Date.now() + grace;
    const steps = shutdownSteps(logger);
    const step = steps.step;
    // Reverse order of start: schedules, listeners, jobs, workers, queued writes, then the store.
    await step('schedules', () => scheduler?.stop());
    await step('inbox watch', () => unwatchInbox?.());
    await step('reservation polls', () => services.cloud.reservations.stop());
    await step('listeners', () => drainListeners(drains, grace, logger));
    await step('sync', async () => {
      // A part cut here is in flight: the next sync posts it again and fetches its answer.
      if (!(await within(services.upstreamSync.stop(), deadline - Date.now()))) logger.warn('a sync still running was abandoned');
    });
    await step('exchange jobs', async () => {
      // A scheduled export or an inbox import still running now is abandoned, as a crash would
      // leave it: each writes its result in one transaction at its end, or not at all.
      if (!(await within(services.exchange.jobs.idle(), deadline - Date.now()))) logger.warn('an exchange job still running was abandoned');
    });
    await step('backup', async () => {
      // A backup still copying is given up (its partial file removed): the store cannot close under it.
      if (!(await within(services.backups.idle(), deadline - Date.now()))) logger.warn('a backup still running was abandoned');
    });
    await step('signature workers', () => verifier?.close());
    await step('queued writes', () => services.ingest.drain());
    await step('device request summary', () => services.deviceRequests.stop());
    await step('refusal counts', () => services.refusals.flush());
    // The day's peak so far, as the last sample before a stop saw it.
    await step('usage history', () => services.history.sample());
    await step('trusted time', () => services.time.check());
    await step('store', () => services.db.close());
    await step('local socket', () => existsSync(socketPath) && unlinkSync(socketPath));
    return steps.clean;
  }

  function stop(grace = graceMs): Promise<void> {
    return (stopping ??= (async () => {
      const clean = await boundedStop(shutdown, grace, logger, 'collector');
      resolveExit(failure || !clean ? EXIT.failed : EXIT.stopped);
    })());
  }

  // Replaced before anything can call it: the storage layer calls it through the object.
  services.fatal = (cause) => {
    if (failure) return;
    failure = cause;
    logger.error('fatal error: the collector stops and exits so that the service manager restarts it', { error: cause.message });
    // During start the start itself stops, at its next step.
    if (started) void stop(Math.min(FATAL_GRACE_MS, graceMs));
  };
  const phase = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    if (failure) throw new StartError('a fatal error during start-up', failure);
    try {
      return await fn();
    } catch (e) {
      throw new StartError(name, e);
    }
  };

  try {
    // Before anything can start a sync: what a stopped one left half made goes.
    await phase('tidy the sync folders', () => services.upstreamSync.tidy());
    // Device signatures are checked on other cores where the built worker can run: one thread
    // for each core beyond the main thread's, up to four (one suffices on two cores).
    const verifyWorker = builtWorker(import.meta.url, './device-api/verify-worker.js');
    const threads = Math.max(1, Math.min(4, availableParallelism() - 1));
    const pool = (verifier = verifyWorker
      ? new PooledVerifier(verifyWorker, threads, (e, replaced) =>
          logger.error(replaced ? 'a signature worker died and was replaced' : 'signature workers keep dying; checks run on the main thread', { error: e.message }))
      : inlineVerifier());
    const handler = createRequestHandler(services, pool);
    const tcp = createTcpServer(services, pool, handler);
    const local = http.createServer(createOperatorApp(services, { transport: 'socket', version: VERSION }));
    drains.push(drainable(local), drainable(tcp));
    // The key's mode and the pair are checked before anything listens: a start that must refuse them opens nothing.
    secure = await phase('read the HTTPS certificate and key (https.certFile, https.keyFile)', () =>
      httpsWanted(config.https) ? createTlsListener(handler, config.https, readTlsPair(config.https), serverTimeouts(config.http), logger) : undefined);
    // The proxy password is read at each sync, but a file others may read is refused at start, as the keys are.
    const proxyPasswordFile = config.exchange.connection.proxyPasswordFile;
    if (proxyPasswordFile) await phase('read the proxy password file (exchange.connection.proxyPasswordFile)', () => readPasswordFile(proxyPasswordFile));
    if (secure) {
      limitConnectionsPerAddress(secure.server, config.http.maxConnectionsPerAddress);
      drains.push(drainable(secure.server));
    }
    // We hold the database lock, so a socket file left here belongs to a process that is gone.
    await phase(`listen on the local socket ${socketPath}`, async () => {
      if (existsSync(socketPath)) unlinkSync(socketPath);
      const umask = process.umask(0o177); // the socket is born 0600: only this user may drive the collector
      try {
        await listen(local, socketPath);
      } finally {
        process.umask(umask);
      }
      chmodSync(socketPath, 0o600);
    });
    await phase(`listen on ${config.http.host}:${config.http.port} (http.host, http.port)`, () => listen(tcp, config.http.port, config.http.host));
    const port = (tcp.address() as { port: number }).port;
    let httpsUrl: string | undefined;
    if (secure) {
      const { server } = secure;
      await phase(`listen on ${config.https.host}:${config.https.port} (https.host, https.port)`, () => listen(server, config.https.port, config.https.host));
      httpsUrl = `https://${config.https.host}:${(server.address() as { port: number }).port}`;
    }

    const logFailure = (job: string) => (e: unknown) => logger.error('scheduled job failed', { job, error: (e as Error).message });
    await phase('the first alert evaluation', () => services.evaluateAlerts());
    await phase('the usage history and forecast', () => sampleAndForecast(services));
    // In connected mode the sync carries usage: the monthly file export runs only by hand.
    const connected = config.exchange.mode === 'connected';
    // With Cisco's cloud as upstream and no connection, the portal's file carries usage: no Outpost bundle is due.
    const bundles = !connected && config.exchange.upstream.kind === 'outpost';
    if (bundles) await phase('the missed monthly export', () => services.exchange.jobs.catchUp().catch(logFailure('monthly-export catch-up')));
    await phase('the schedules', () => {
      scheduler = new Scheduler(
        [
          { name: 'alerts', cron: config.alerts.evaluateCron, run: () => services.evaluateAlerts() },
          { name: 'trusted-time', cron: '* * * * *', run: () => services.time.check() },
          { name: 'refusal-counts', cron: '* * * * *', run: () => services.refusals.flush() },
          // Every five minutes: often enough to catch a day's peak, rare enough to cost nothing (one read of the counters).
          { name: 'usage-history', cron: '*/5 * * * *', run: () => void services.history.sample() },
          { name: 'usage-forecast', cron: config.forecast.evaluateCron, run: () => sampleAndForecast(services) },
          { name: 'event-checkpoint', cron: config.events.checkpointCron, run: () => void services.checkpoints.make('schedule') },
          ...(services.retention.enabled ? [{ name: 'report-retention', cron: config.retention.pruneCron, run: () => services.retention.prune({ dryRun: false, actor: 'schedule' }) }] : []),
          ...(connected ? [{ name: 'sync', cron: config.exchange.syncCron, run: () => void services.upstreamSync.scheduled().catch(logFailure('sync')) }] : []),
          ...(bundles ? [{ name: 'monthly-export', cron: config.exchange.exportCron, run: () => void services.exchange.jobs.runScheduledExport().catch(logFailure('monthly-export')) }] : []),
          {
            name: 'cisco-poll',
            cron: config.cisco.pollCron,
            // ACKs not yet delivered are tried again after each poll: a device down today gets its ACK when it is back.
            run: () => (services.cisco.devices.list().length ? services.cisco.poller.poll('schedule').then(() => services.cisco.delivery.deliver('schedule')) : undefined),
          },
          ...(config.backup.enabled ? [{ name: 'backup', cron: config.backup.cron, run: () => void services.backups.scheduled().catch(logFailure('backup')) }] : []),
          { name: 'reservations', cron: config.cisco.pollCron, run: () => void services.cloud.reservations.deliverPending('schedule').catch(logFailure('reservations')) },
          {
            name: 'inbox',
            cron: `*/${Math.min(59, config.exchange.inboxPollSeconds)} * * * * *`,
            run: () => void services.exchange.jobs.pollInbox().catch(logFailure('inbox')),
          },
        ],
        logger,
        config.time.zone,
      );
      scheduler.start();
      services.deviceRequests.start(config.log.deviceSummarySeconds);
      unwatchInbox = services.exchange.jobs.watchInbox();
    });
    await phase('the missed sync', () => services.upstreamSync.catchUp());
    await phase('the poll after a restore', () => {
      // A restored store lacks what polled devices reported since its backup: they hold it, so poll them now.
      const db = services.db;
      if (!db.prepare("SELECT 1 FROM meta WHERE key = 'restore.poll_after_start'").get()) return;
      db.prepare("DELETE FROM meta WHERE key = 'restore.poll_after_start'").run();
      void services.cisco.poller.poll('restore').then(() => services.cisco.delivery.deliver('restore')).catch(logFailure('poll after restore'));
    });
    await phase('the end of start-up', () => {}); // a fatal error raised during start-up stops it here
    started = true;
    logger.info('collector started', {
      url: `http://${config.http.host}:${port}`, ...(httpsUrl ? { https: httpsUrl } : {}), dataDir: config.dataDir, collectorId: services.identity.collectorId,
      fingerprint: services.identity.fingerprint, version: VERSION,
    });
    const reload = () => {
      if (secure) secure.reload();
      else logger.info('SIGHUP: nothing to reload (no HTTPS listener)');
    };
    return { services, port, socketPath, stop, exitCode, reload };
  } catch (e) {
    logger.error('the collector could not start', { error: (e as Error).message });
    await stop(0);
    throw e;
  }
}
