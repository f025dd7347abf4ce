import { ConfigError } from '../../config/load.js';
import { EXIT } from '../../lifecycle.js';
import { fail, failed, render, type Check } from '../../doctor/check.js';
import { str, type Command } from '../command.js';

export const doctorCommands: Command[] = [
  {
    name: 'doctor',
    usage: 'outpost doctor [--timeout SECONDS] [--json] [--config FILE] [--data-dir DIR]',
    summary: 'Check this install on the host (config, file modes, database, disk, clock, keys, upstream, devices); exit 1 when something fails',
    options: { timeout: { type: 'string' } },
    async run(ctx) {
      const timeout = str(ctx.values.timeout);
      const seconds = timeout === undefined ? 3 : Number(timeout);
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) {
        process.stderr.write('outpost doctor: --timeout: a number of seconds, above 0 and at most 60\n');
        return 2;
      }
      let checks: Check[];
      try {
        // Read on the host, never through the collector's API: the doctor is for when it is down.
        checks = await (await import('../../doctor/run.js')).runDoctor(ctx.config(), { timeoutMs: seconds * 1000, configFile: str(ctx.values.config) ?? process.env.OUTPOST_CONFIG });
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        checks = [fail('config', e.message, 'correct the file or variable named above; outpost serve refuses to start until then')];
        ctx.output({ ok: false, checks }, () => render(checks));
        return EXIT.config;
      }
      const bad = failed(checks);
      ctx.output({ ok: !bad, checks }, () => render(checks));
      return bad ? 1 : 0;
    },
  },
];
