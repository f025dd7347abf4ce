import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI } from './processes.js';

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
export function serveUpstream(dir: string, env: Record<string, string> = {}): Promise<UpstreamProcess> {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: end-to-end tests run the built CLI (npm test builds it first)');
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, 'upstream', 'serve', '--dir', dir], {
      env: { ...process.env, OUTPOST_UPSTREAM_PORT: '0', OUTPOST_UPSTREAM_HOST: '127.0.0.1', OUTPOST_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let started = false;
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the upstream did not start:\n${out}`));
    }, 15_000);
    const onData = (c: Buffer) => {
      out += c;
      const m = /^listening on (https?:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          proc,
          url: m[1]!,
          log: () => out,
          exited,
          stop: (signal = 'SIGTERM') => {
            proc.kill(signal);
            return exited;
          },
          kill9: () => {
            proc.kill('SIGKILL');
            return exited;
          },
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`the upstream exited with ${code} before it started:\n${out}`));
    });
  });
}
