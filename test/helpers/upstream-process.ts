import type { ChildProcess } from 'node:child_process';
import { spawnServer } from './processes.js';

export interface UpstreamProcess {
  proc: ChildProcess;
  /** Where it listens, with the real port: http(s)://127.0.0.1:PORT. */
  url: string;
  /** Everything it has printed so far (stdout and stderr). */
  log: () => string;
  /** Settles with the exit code once the process has exited (null after a signal it did not handle). */
  exited: Promise<number | null>;
  /** Sends the signal (SIGTERM by default) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL: no drain, no close; resolves once it is gone. */
  kill9(): Promise<number | null>;
}

/**
 * Starts `outpost upstream serve --dir DIR` (the built CLI) on a free loopback port and
 * waits for it to say where it listens. `env` adds OUTPOST_* settings (TLS files, limits...).
 */
export async function serveUpstream(dir: string, env: Record<string, string> = {}): Promise<UpstreamProcess> {
  const p = await spawnServer(
    ['upstream', 'serve', '--dir', dir],
    { OUTPOST_UPSTREAM_PORT: '0', OUTPOST_UPSTREAM_HOST: '127.0.0.1', OUTPOST_LOG_LEVEL: 'info', ...env },
    /^listening on (https?:\/\/127\.0\.0\.1:\d+)$/m,
    'upstream',
  );
  return { ...p, kill9: () => p.stop('SIGKILL') };
}
