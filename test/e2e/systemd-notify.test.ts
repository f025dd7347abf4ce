import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envFor, serve, tempDataDir } from '../helpers/processes.js';

describe('readiness for systemd (Type=notify)', () => {
  it('when started by systemd (NOTIFY_SOCKET set), then once it listens the collector runs systemd-notify --ready; without systemd it runs nothing', async () => {
    const dir = tempDataDir();
    const bin = join(dir, '..', 'bin');
    mkdirSync(bin, { recursive: true });
    const record = join(dir, '..', 'notified');
    // A stand-in for systemd-notify that records how it was called.
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@ socket=$NOTIFY_SOCKET" >> ${record}\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const env = { ...envFor(dir), PATH: `${bin}:${process.env.PATH}` };

    const plain = await serve(dir, env);
    await plain.stop();
    expect(existsSync(record)).toBe(false);

    const underSystemd = await serve(dir, { ...env, NOTIFY_SOCKET: '/run/systemd/notify' });
    try {
      for (let i = 0; i < 100 && !existsSync(record); i++) await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(record, 'utf8')).toMatch(new RegExp(`^--ready --pid=${underSystemd.proc.pid} socket=/run/systemd/notify\\n$`));
      expect((await fetch(`${underSystemd.url}/healthz`)).status).toBe(200);
    } finally {
      await underSystemd.stop();
    }
  }, 30_000);
});
