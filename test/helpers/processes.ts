import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordOutput, recordPrintedTokens, recordProcessSecrets } from './secrets.js';
import { tempDir } from './temp.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: end-to-end tests run the built CLI (npm test builds it first)');
}

/** A fresh site folder for one test: the collector's data, its bundles and an upstream's store side by side. */
export const tempDataDir = () => join(tempDir('e2e'), 'data');

/** The environment that points every part of Outpost at one test's site folder. */
export const envFor = (dataDir: string): Record<string, string> => ({
  OUTPOST_DATA_DIR: dataDir,
  OUTPOST_EXCHANGE_BUNDLE_DIR: join(dataDir, '..', 'bundles'),
  OUTPOST_UPSTREAM_DATA_DIR: join(dataDir, '..', 'upstream'),
});

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `outpost` command as a separate process. */
export function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<CliResult> {
  assertBuilt();
  recordProcessSecrets(args, env);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c));
    p.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`outpost ${args.join(' ')} timed out\n${stderr}`));
    }, timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      recordPrintedTokens(stdout);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  log: () => string;
  /** Settles with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Spawns the built CLI with `args` and waits until its output matches `ready` (whose first group
 * is the URL it serves), rejecting with everything it printed if it exits or takes 15 s first.
 */
export function spawnServer(args: string[], env: Record<string, string | undefined>, ready: RegExp, what: string): Promise<ServerProcess> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let started = false;
    // Its output is searched for the file's secrets at the file's end (test/setup.ts).
    recordProcessSecrets(args, env);
    recordOutput(what, () => out);
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the ${what} did not start:\n${out}`));
    }, 15_000);
    const onData = (c: Buffer) => {
      out += c;
      const m = ready.exec(out);
      if (!m || started) return;
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
      });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`the ${what} exited with ${code} before it started:\n${out}`));
    });
  });
}

/** Starts `outpost serve` on a free loopback port and waits for it to say where it listens. */
export function serve(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  return spawnServer(['serve'], { ...envFor(dataDir), OUTPOST_HTTP_PORT: '0', OUTPOST_HTTP_HOST: '127.0.0.1', ...env }, /"url":"(http:\/\/127\.0\.0\.1:\d+)"/, 'collector');
}

/** Resolves with `p`'s value, or rejects naming `what` if it has not settled within `ms`. */
export function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e as Error)),
    );
  });
}
