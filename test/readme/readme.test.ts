import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { missingExpectation, readmeBlocks } from './blocks.js';
import { ReadmeShell } from './shell.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** A port nobody holds now: never 8182, which a reader's own collector or another test may hold. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the README, run as a newcomer would', () => {
  const blocks = readmeBlocks(README);
  const runnable = blocks.filter((b) => b.norun === undefined);
  let server: ServerProcess;
  let shell: ReadmeShell;
  let site: string;
  let treeBefore: string;

  beforeAll(async () => {
    const dataDir = tempDataDir();
    site = join(dataDir, '..');
    treeBefore = tree();
    const port = await freePort();
    const upstreamPort = await freePort();
    // The collector runs as the connected section restarts it (mode and the upstream's address)
    // from the start: the walkthroughs before it use only commands that work in either mode, and
    // the scheduled sync is kept out of the way so that it cannot run between two blocks.
    const env = {
      ...envFor(dataDir), OUTPOST_HTTP_PORT: String(port),
      OUTPOST_EXCHANGE_MODE: 'connected', OUTPOST_EXCHANGE_CONNECTION_URL: `http://127.0.0.1:${upstreamPort}`, OUTPOST_UPSTREAM_PORT: String(upstreamPort),
      OUTPOST_EXCHANGE_SYNC_CRON: '0 0 1 1 *',
    };
    server = await serve(dataDir, env);
    // The reader's terminal: the collector's variables, and mktemp's folders inside this test's.
    shell = new ReadmeShell(ROOT, site, { ...process.env, ...env, TMPDIR: site });
  });

  afterAll(async () => {
    shell?.close();
    await server?.stop();
  });

  it('runs the walkthroughs, and every block it does not run says why', () => {
    const headings = new Set(runnable.map((b) => b.heading));
    for (const h of ['Outpost', 'Register a device and send a report with curl', 'RUM files from IOS-XE devices', 'The disconnected exchange: bundles across the air gap', 'The connected exchange: syncing over HTTPS'])
      expect(headings, h).toContain(h);
    expect(runnable.filter((b) => b.heading.startsWith('The disconnected exchange')).length).toBeGreaterThanOrEqual(4);
    for (const b of blocks.filter((x) => x.norun !== undefined)) expect(b.norun, `line ${b.line}`).not.toBe('');
  });

  // A block starts a handful of processes: a few seconds each here, more on a loaded machine.
  for (const b of runnable) {
    it(`${b.heading} (line ${b.line}) runs and prints what it says`, async () => {
      const r = await shell.run(b.code, 50_000);
      expect(r.failures, `commands that failed:\n${r.output}`).toEqual([]);
      const missing = missingExpectation(r.output, b.expect);
      expect(missing, `expected "${missing}" in the output:\n${r.output}`).toBeUndefined();
    }, 60_000);
  }

  const curl = runnable.find((b) => b.heading === 'Register a device and send a report with curl')!;

  it('the curl block runs again: the same device registers again and sends a new report', async () => {
    const r = await shell.run(curl.code, 50_000);
    expect(r.failures, r.output).toEqual([]);
    expect(r.output).toMatch(/device dev_\S+: re_registered\n/);
    expect(missingExpectation(r.output, curl.expect), r.output).toBeUndefined();
  }, 60_000);

  it('with a new key, the curl block says that the device waits for an operator, and names the command', async () => {
    rmSync(join(site, 'outpost-curl-device', 'device.pem'));
    const r = await shell.run(curl.code, 50_000);
    expect(r.output).toMatch(/device (dev_\S+): pending_rekey\nit waits for an operator: npm run outpost -- devices approve \1\n/);
  }, 60_000);

  it('leaves nothing in the project folder', () => {
    expect(tree()).toBe(treeBefore);
  });
});

/**
 * The files git does not track in the working tree, ignored ones included, besides the build: a
 * block that leaves a key, a bundle or a data folder in the project shows here. Edits to tracked
 * files are left out, so someone editing the README while the suite runs does not fail it.
 */
function tree(): string {
  const out = execFileSync('git', ['status', '--porcelain', '--ignored'], { cwd: ROOT, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^(\?\?|!!) /.test(l) && !/ (dist|node_modules)\/$/.test(l))
    .sort()
    .join('\n');
}
