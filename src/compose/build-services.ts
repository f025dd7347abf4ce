import { preMigrationSealer } from '../backup/pre-migration.js';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { openStore } from '../store/open.js';
import { WalCheckpointer } from '../store/wal-checkpointer.js';
import { LabelService } from '../labels/service.js';
import { AccessRequestService } from '../access/service.js';
import type { FileSync } from '../store/wal-sync.js';
import { loadOrCreateIdentity } from '../identity/identity.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { DAY_MS, systemClock, type Clock } from '../shared/clock.js';
import { EventService } from '../events/service.js';
import { RefusalCounter } from '../events/refusals.js';
import { CheckpointService } from '../events/checkpoints.js';
import { AlertService } from '../alerts/service.js';
import { TrustedTime } from '../time/trusted-time.js';
import { timeOptions } from '../time/options.js';
import { floorFile } from '../time/floor-file.js';
import { AccountService } from '../accounts/service.js';
import { TokenService } from '../tokens/service.js';
import { DeviceService } from '../devices/service.js';
import { LicenseService } from '../licenses/service.js';
import { repairFuturePeriods } from '../licenses/future-periods.js';
import { PolicyService } from '../policy/service.js';
import { IngestService } from '../usage/ingest.js';
import { AckReader } from '../usage/acks.js';
import { Destinations, destinationPlan } from '../usage/destinations.js';
import { RumImporter } from '../rum/import.js';
import type { Services } from '../services.js';
import { evaluateAckOverdue, evaluateExpiryAlerts } from '../alerts/expiry.js';
import { ExchangeState } from '../exchange/state.js';
import { ExportService } from '../exchange/export.js';
import { ImportService } from '../exchange/import.js';
import { EnrollmentService } from '../exchange/enrollment.js';
import { ExchangeJobs } from '../exchange/jobs.js';
import { KeyRotationService } from '../exchange/key-rotation.js';
import { SyncService } from '../sync/service.js';
import { SyncState } from '../sync/sync-state.js';
import { connectUpstream } from '../sync/connect.js';
import { SyncEnrollment } from '../sync/enroll.js';
import { PolledDeviceService } from '../cisco/polled-devices.js';
import { SecretBox } from '../cisco/secrets.js';
import { DevicePoller } from '../cisco/poller.js';
import { PortalExport } from '../cisco/portal-export.js';
import { PortalAcks } from '../cisco/portal-acks.js';
import { LoginThrottle } from '../http/rate-limit.js';
import { SessionService } from '../users/sessions.js';
import { UserService } from '../users/service.js';
import { CssmClient } from '../cssm/client.js';
import { CloudCredentials } from '../cssm/credentials.js';
import { CloudSync } from '../cssm/cloud-sync.js';
import { CloudUsage } from '../cssm/usage.js';
import { CloudPositions } from '../cssm/positions.js';
import { CloudReservations } from '../cssm/reservations.js';
import type { UpstreamSync } from '../sync/upstream-sync.js';
import { AckDelivery } from '../cisco/ack-delivery.js';
import { CollectorMetrics } from '../metrics/collector-metrics.js';
import { Readiness } from '../metrics/readiness.js';
import { BackupService } from '../backup/service.js';
import { ReportPruner } from '../retention/pruner.js';
import { UsageHistory } from '../history/service.js';
import { DeviceRequestSummary } from '../device-api/request-summary.js';
import { NotifyService } from '../notify/service.js';
import { VERSION } from './version.js';
import { databaseFile } from './data-files.js';

export interface BuildOptions {
  clock?: Clock;
  logger?: Logger;
  /** The WAL's fdatasync (durability tests observe or fail it). */
  walSync?: FileSync;
}

/** The composition root: wires config → store → services. Opens the database (under its exclusive lock); starts nothing. */
export function buildServices(config: Config, opts: BuildOptions = {}): Services {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config.log.level, { format: config.log.format });
  const db = openStore(databaseFile(config), { sealCopy: preMigrationSealer(config.dataDir, VERSION) });
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
    const walCheckpoints = new WalCheckpointer(db, databaseFile(config), logger);
    const metrics = new CollectorMetrics({ config, db, clock, licenses, ingest, refusals, events, destinations, walCheckpoints });
    // After the metrics, whose ingest and refusal observers it chains to.
    const deviceRequests = new DeviceRequestSummary(logger, () => clock.now()).observe(ingest, refusals);
    // Observes the alerts from here on: each alert opened or resolved writes its notifications in its own transaction.
    const notify = new NotifyService(db, clock, alerts, metrics.registry, logger, config, identity.collectorId);
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
      readiness: new Readiness(db, config.dataDir, config.ready.minFreeDiskMb, walCheckpoints),
      walCheckpoints,
      labels: new LabelService(db, time, events, accounts, devices.repo),
      access: new AccessRequestService(db, time, events, accounts, users, () => notify.nudge()),
      backups: new BackupService(
        { db, dataDir: config.dataDir, collectorId: identity.collectorId, version: VERSION, now: () => time.now(), floorMs: () => time.now() },
        events, logger, config.backup,
      ),
      retention: new ReportPruner(db, time, events, ingest.commits, config.retention),
      deviceRequests,
      notify,
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
