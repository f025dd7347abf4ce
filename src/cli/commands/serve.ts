import type { Command } from '../command.js';
import type { Logger } from '../../shared/logger.js';

/** What untilStopped drives: the collector, or the upstream service. */
export interface Stoppable {
  services: { logger: Logger };
  stop(): Promise<void>;
  readonly exitCode: Promise<number>;
  /** SIGHUP: what can be read again without a restart is read again. */
  reload?(): void;
}

/**
 * Starts the collector and runs until it stops, resolving with the exit code `outpost serve`
 * returns: 0 after SIGTERM or SIGINT drained it, non-zero after a fatal error (or a stop that
 * could not close everything), so that the service manager restarts it. The signals are heard
 * from before the start: one that comes during it stops the collector as soon as it is up,
 * rather than killing it with its socket and store half open. A second signal exits at once.
 */
export async function untilStopped(start: () => Promise<Stoppable>, signals: NodeJS.EventEmitter = process): Promise<number> {
  let running: Stoppable | undefined;
  let signalled: string | undefined;
  const onSignal = (signal: string) => {
    if (signalled) {
      running?.services.logger.warn('second signal: exiting without waiting for the stop', { signal });
      process.exit(1);
    }
    signalled = signal;
    if (!running) return;
    running.services.logger.info('stopping', { signal });
    void running.stop();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  // Heard from before the start too: Node's default for SIGHUP ends the process.
  const onHup = () => {
    if (running && !signalled) running.reload?.();
  };
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  signals.on('SIGHUP', onHup);
  try {
    running = await start();
    if (signalled) {
      running.services.logger.info('stopping', { signal: signalled });
      void running.stop();
    }
    return await running.exitCode;
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
    signals.off('SIGHUP', onHup);
  }
}

export const serveCommands: Command[] = [
  {
    name: 'serve',
    usage: 'outpost serve [--config FILE]',
    summary: 'Run the collector (device API, operator API, local socket, schedules)',
    async run(ctx) {
      const config = ctx.config();
      // Loaded when run: the other commands need none of the collector's modules (see client.ts).
      const [{ startCollector }, { notifyReady }] = await Promise.all([import('../../compose/start-collector.js'), import('../../shared/systemd-notify.js')]);
      const code = await untilStopped(async () => {
        const running = await startCollector(config);
        await notifyReady(running.services.logger);
        return running;
      });
      // The store is closed. Anything still running (an export cut at the end of the grace
      // period, a sync on a disk that no longer answers) can only fail now, or publish a file
      // the store has no record of: end the process at once, once the last log lines are out.
      setImmediate(() => process.exit(code));
      return code;
    },
  },
  {
    name: 'init',
    usage: 'outpost init [--config FILE]',
    summary: "Create the data folder, the database and the collector's identity, and print them",
    async run(ctx) {
      const config = ctx.config();
      const [{ buildServices }, { createLogger }] = await Promise.all([import('../../compose/build-services.js'), import('../../shared/logger.js')]);
      const s = buildServices(config, { logger: createLogger('error', true) });
      const out = {
        dataDir: config.dataDir,
        collectorId: s.identity.collectorId,
        publicKey: s.identity.publicKeyB64,
        fingerprint: s.identity.fingerprint,
        account: s.accounts.account(),
      };
      s.db.close();
      ctx.output(out, () =>
        [`data:        ${out.dataDir}`, `collector:   ${out.collectorId}`, `public key:  ${out.publicKey}`, `fingerprint: ${out.fingerprint}`].join('\n'),
      );
    },
  },
];
