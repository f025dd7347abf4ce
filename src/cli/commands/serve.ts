import type { Command } from '../command.js';
import { startCollector, buildServices } from '../../main.js';
import { createLogger } from '../../shared/logger.js';

export const serveCommands: Command[] = [
  {
    name: 'serve',
    usage: 'outpost serve [--config FILE]',
    summary: 'Run the collector (device API, operator API, local socket, schedules)',
    async run(ctx) {
      const running = await startCollector(ctx.config());
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          running.services.logger.info('stopping', { signal });
          void running.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    },
  },
  {
    name: 'init',
    usage: 'outpost init [--config FILE]',
    summary: "Create the data folder, the database and the collector's identity, and print them",
    async run(ctx) {
      const config = ctx.config();
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
