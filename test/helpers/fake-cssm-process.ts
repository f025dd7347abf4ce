import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import type { FakeCssmOptions, FakeLicense, FaultSpec, RequestRecord, ReservationRecord, UploadRecord } from './fake-cssm.js';
import { makeTestCa, type TestCa } from './test-ca.js';
import { tempDir } from './temp.js';

/*
 * The fake CSSM as a real HTTPS process, for end-to-end tests. vitest's transform is not there
 * for a child, so fake-cssm-main.ts is bundled into one .mjs (rolldown, which vitest's vite
 * brings; a few tens of milliseconds) and run with node. Same interface as the in-process fake,
 * its inspection methods async: they ask the child's control server.
 */

const MAIN = fileURLToPath(new URL('./fake-cssm-main.ts', import.meta.url));

export interface FakeCssmProcess {
  url: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  ca: TestCa;
  domain: string;
  accountId: string;
  virtualAccounts: { name: string; id: string }[];
  proc: ChildProcess;
  /** Everything the process printed. */
  log(): string;
  uploads(): Promise<UploadRecord[]>;
  duplicates(): Promise<string[]>;
  refusedDuplicates(): Promise<string[]>;
  requests(): Promise<RequestRecord[]>;
  reservations(): Promise<ReservationRecord[]>;
  fault(f: FaultSpec): Promise<void>;
  expireTokens(): Promise<void>;
  setLicenses(l: FakeLicense[]): Promise<void>;
  stop(): Promise<void>;
}

let bundled: Promise<string> | null = null;

/** One bundle per test file (a module-level promise): every process of the file runs it. */
function bundle(): Promise<string> {
  bundled ??= (async () => {
    const file = join(tempDir('fake-cssm'), 'fake-cssm-main.mjs');
    await build({ input: MAIN, platform: 'node', output: { file, format: 'esm' }, logLevel: 'warn' });
    return file;
  })();
  return bundled;
}

export async function startFakeCssmProcess(o: FakeCssmOptions = {}): Promise<FakeCssmProcess> {
  const file = await bundle();
  // The CA is made here so that its folder is this test file's, removed after it.
  const opts = { ...o, ca: o.ca ?? makeTestCa() };
  const proc = spawn(process.execPath, [file, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the fake CSSM did not start:\n${out}`));
    }, 15_000);
    const onData = (c: Buffer) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('{"ready":"fake-cssm"'));
      if (!line || !out.includes(`${line}\n`)) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, unknown>);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => (out += c));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the fake CSSM exited with ${code} before it started:\n${out}`));
    });
  });
  const control = ready.control as string;
  const ask = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${control}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    const v = (await r.json()) as T;
    if (!r.ok) throw new Error(`fake CSSM control ${path}: ${JSON.stringify(v)}`);
    return v;
  };
  return {
    url: ready.url as string,
    tokenUrl: ready.tokenUrl as string,
    clientId: ready.clientId as string,
    clientSecret: ready.clientSecret as string,
    ca: opts.ca,
    domain: ready.domain as string,
    accountId: ready.accountId as string,
    virtualAccounts: ready.virtualAccounts as { name: string; id: string }[],
    proc,
    log: () => out,
    uploads: () => ask('GET', '/uploads'),
    duplicates: () => ask('GET', '/duplicates'),
    refusedDuplicates: () => ask('GET', '/refused-duplicates'),
    requests: () => ask('GET', '/requests'),
    reservations: () => ask('GET', '/reservations'),
    fault: async (f) => {
      await ask('POST', '/fault', { ...f, path: typeof f.path === 'string' ? f.path : { re: f.path.source, flags: f.path.flags } });
    },
    expireTokens: async () => {
      await ask('POST', '/expire-tokens', {});
    },
    setLicenses: async (l) => {
      await ask('POST', '/licenses', l);
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
