import { afterEach, expect, it } from 'vitest';
import { join } from 'node:path';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { cli, type CliResult } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';
import { growBundle } from '../helpers/grow-bundle.js';
import { serveUpstream, type UpstreamProcess } from '../helpers/upstream-process.js';

let h: Harness | undefined;
let up: UpstreamProcess | undefined;
afterEach(async () => {
  if (up && up.proc.exitCode === null) await up.kill9();
  await h?.close();
});

const LINE = /^upstream process count: (\d+)\/(\d+) reports \((\d+)%\), [\d.]+\/s$/;

/** The plain progress lines (stderr is a pipe here, as in a log): counts that only grow, from none to all. */
function expectPlainProgress(r: CliResult, total: number): void {
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stderr.trimEnd().split('\n');
  for (const l of lines) expect(l).toMatch(LINE);
  const done = lines.map((l) => Number(LINE.exec(l)![1]));
  expect(lines.map((l) => Number(LINE.exec(l)![2]))).toEqual(lines.map(() => total));
  expect(done[0]).toBe(0);
  expect(done[done.length - 1]).toBe(total);
  // Each tenth of the way is told (the bundle spans many read batches): more than a first and a last line.
  expect(lines.length).toBeGreaterThanOrEqual(5);
  for (let i = 1; i < done.length; i++) expect(done[i]!).toBeGreaterThanOrEqual(done[i - 1]!);
  expect(new Set(done).size).toBeGreaterThanOrEqual(5);
}

it('`outpost upstream process` shows its progress on stderr, run on the store or through the serving upstream\'s socket; --quiet shows none and --json stdout stays parseable', async () => {
  h = await startHarness();
  const dir = join(tempDir('upstream-progress'), 'upstream');
  const env = { OUTPOST_UPSTREAM_DATA_DIR: dir };

  const req = await h.services.exchange.enrollment.request('ACME', 'test');
  const added = await cli(['upstream', 'collector', 'add', req.file, '--account', 'ACME', '--fingerprint', req.fingerprint, '--json'], env);
  expect(added.code, added.stderr).toBe(0);
  const identity = JSON.parse((await cli(['upstream', 'status', '--json'], env)).stdout);
  await h.services.exchange.enrollment.trust(JSON.parse(added.stdout).responseFile, identity.fingerprint, 'test');
  expect((await cli(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--quantity', '10'], env)).code).toBe(0);

  const d = await h.registered();
  const files: { file: string; total: number }[] = [];
  for (const id of ['a', 'b', 'c', 'd']) {
    await d.sendReport(d.report(TAG, 1, undefined, `real-${id}`));
    const file = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body.file as string;
    files.push({ file, total: growBundle(file, 30_000, (b) => h!.services.identity.signDetached(b), { brokenLast: id === 'd' }) });
  }

  // The CLI opens the store itself.
  const own = await cli(['upstream', 'process', files[0]!.file, '--json'], env, 60_000);
  expectPlainProgress(own, files[0]!.total);
  expect(JSON.parse(own.stdout)).toMatchObject({ reports: { accepted: files[0]!.total } });

  // The serving upstream runs it and streams its progress back over the socket.
  up = await serveUpstream(dir);
  const quiet = await cli(['upstream', 'process', files[1]!.file, '--quiet', '--json'], env, 60_000);
  expect(quiet.code, quiet.stderr).toBe(0);
  expect(quiet.stderr).toBe('');
  expect(JSON.parse(quiet.stdout)).toMatchObject({ reports: { accepted: files[1]!.total } });

  const served = await cli(['upstream', 'process', files[2]!.file], env, 60_000);
  expectPlainProgress(served, files[2]!.total);
  expect(served.stdout).toContain(`${files[2]!.total} reports accepted`);

  // A bundle that fails once counting has begun: the stream's last line carries the refusal, the
  // command says it and fails, and nothing of the bundle is counted.
  const broken = await cli(['upstream', 'process', files[3]!.file, '--json'], env, 60_000);
  expect(broken.code).toBe(1);
  expect(broken.stderr.split('\n')[0]).toMatch(LINE);
  expect(broken.stderr).toContain(`reports.ndjson.gz line ${files[3]!.total}`);
  expect(broken.stderr).toContain('(malformed_payload)');
  const status = JSON.parse((await cli(['upstream', 'status', '--json'], env)).stdout);
  expect(status.collectors[0].usageHwm).toBe(3);
  expect(await up.stop('SIGTERM')).toBe(0);
}, 90_000);
