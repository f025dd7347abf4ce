import { pollAfterRestore } from '../backup/poll-after-restore.js';
import { existsSync, unlinkSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { SignatureVerifier } from '../device-api/verifier.js';
import { drainable, listen } from '../http/server.js';
import { limitConnectionsPerAddress } from '../http/limits.js';
import { readPasswordFile } from '../sync/dispatcher.js';
import type { TlsListener } from '../http/tls.js';
import { EXIT, FATAL_GRACE_MS, StartError, boundedStop, drainListeners, shutdownSteps, within } from '../lifecycle.js';
import { Scheduler } from '../schedules.js';
import type { Services } from '../services.js';
import { VERSION } from './version.js';
import { socketFile } from './data-files.js';
import { buildServices, type BuildOptions } from './build-services.js';
import { createHttpsListener, createRequestHandler, createSocketServer, createTcpServer, listenOnSocket } from './listeners.js';
import { createSignatureVerifier } from './signature-verifier.js';
import { exchangeDuties, logJobFailure, sampleAndForecast, schedulesTable } from './schedules-table.js';

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
 * Starts the collector: config → store → services (buildServices) → HTTP and local socket → schedules. A start
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
    await step('notifications', async () => {
      // A delivery cut here is sent again after the restart (its claim is released at start).
      if (!(await within(services.notify.stop(), deadline - Date.now()))) logger.warn('a notification delivery still running was abandoned');
    });
    await step('signature workers', () => verifier?.close());
    await step('queued writes', () => services.ingest.drain());
    // After the last writes: the store's close checkpoints what is left, on this thread, once.
    await step('WAL checkpoints', () => services.walCheckpoints.stop());
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
    const pool = (verifier = createSignatureVerifier(logger));
    if (config.store.checkpoints === 'worker') await phase('start the WAL checkpoint worker', () => services.walCheckpoints.start());
    const handler = createRequestHandler(services, pool);
    const tcp = createTcpServer(services, pool, handler);
    const local = createSocketServer(services);
    drains.push(drainable(local), drainable(tcp));
    secure = await phase('read the HTTPS certificate and key (https.certFile, https.keyFile)', () => createHttpsListener(config, handler, logger));
    // The proxy password is read at each sync, but a file others may read is refused at start, as the keys are.
    const proxyPasswordFile = config.exchange.connection.proxyPasswordFile;
    if (proxyPasswordFile) await phase('read the proxy password file (exchange.connection.proxyPasswordFile)', () => readPasswordFile(proxyPasswordFile));
    await phase('read the SMTP password file (notifications.email.passwordFile)', () => services.notify.checkSecrets());
    if (secure) {
      limitConnectionsPerAddress(secure.server, config.http.maxConnectionsPerAddress);
      drains.push(drainable(secure.server));
    }
    await phase(`listen on the local socket ${socketPath}`, () => listenOnSocket(local, socketPath));
    await phase(`listen on ${config.http.host}:${config.http.port} (http.host, http.port)`, () => listen(tcp, config.http.port, config.http.host));
    const port = (tcp.address() as { port: number }).port;
    let httpsUrl: string | undefined;
    if (secure) {
      const { server } = secure;
      await phase(`listen on ${config.https.host}:${config.https.port} (https.host, https.port)`, () => listen(server, config.https.port, config.https.host));
      httpsUrl = `https://${config.https.host}:${(server.address() as { port: number }).port}`;
    }

    const logFailure = logJobFailure(logger);
    await phase('the first alert evaluation', () => services.evaluateAlerts());
    await phase('the usage history and forecast', () => sampleAndForecast(services));
    const { bundles } = exchangeDuties(config);
    if (bundles) await phase('the missed monthly export', () => services.exchange.jobs.catchUp().catch(logFailure('monthly-export catch-up')));
    await phase('the schedules', () => {
      scheduler = new Scheduler(schedulesTable(services, logFailure), logger, config.time.zone);
      scheduler.start();
      services.deviceRequests.start(config.log.deviceSummarySeconds);
      services.notify.start();
      unwatchInbox = services.exchange.jobs.watchInbox();
    });
    await phase('the missed sync', () => services.upstreamSync.catchUp());
    await phase('the poll after a restore', () => void pollAfterRestore(services)?.catch(logFailure('poll after restore')));
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
