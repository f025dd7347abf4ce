import { afterEach, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { cli } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';
import { growBundle } from '../helpers/grow-bundle.js';
import { serveUpstream, type UpstreamProcess } from '../helpers/upstream-process.js';
import { readManifest } from '../../src/exchange/read.js';
import { openUpstreamStore } from '../../src/upstream/store.js';
import { signRequest, SYNC_BASE, BUNDLE_MEDIA_TYPE } from '../../src/sync/protocol.js';

let h: Harness | undefined;
let up: UpstreamProcess | undefined;
afterEach(async () => {
  if (up && up.proc.exitCode === null) await up.kill9();
  await h?.close();
});

it('when `outpost upstream serve` is killed with jobs queued, then the next start runs them and every report is counted once; its CLI acts through the socket', async () => {
  h = await startHarness();
  const dir = join(tempDir('upstream-serve'), 'upstream');
  up = await serveUpstream(dir);
  const env = { OUTPOST_UPSTREAM_DATA_DIR: dir };
  expect(statSync(join(dir, 'upstream.sock')).mode & 0o777).toBe(0o600);

  // Enrollment and entitlements through the running upstream's socket (it holds the store's lock).
  const req = await h.services.exchange.enrollment.request('ACME', 'test');
  const added = await cli(['upstream', 'collector', 'add', req.file, '--account', 'ACME', '--fingerprint', req.fingerprint, '--json'], env);
  expect(added.code, added.stderr).toBe(0);
  const enrolled = JSON.parse(added.stdout);
  const status0 = JSON.parse((await cli(['upstream', 'status', '--json'], env)).stdout);
  expect(status0).toMatchObject({ serving: true, collectors: [expect.objectContaining({ id: req.collectorId, usageHwm: 0 })] });
  await h.services.exchange.enrollment.trust(enrolled.responseFile, status0.fingerprint, 'test');
  const ent = await cli(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--quantity', '10'], env);
  expect(ent.code, ent.stderr).toBe(0);

  // Three bundles: a large one first, so that the two after it wait in the queue.
  const d = await h.registered();
  const files: string[] = [];
  for (const id of ['a', 'b', 'c']) {
    await d.sendReport(d.report(TAG, 1, undefined, `real-${id}`));
    files.push((await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body.file);
  }
  const GROWN = 60_000;
  growBundle(files[0]!, GROWN, (b) => h!.services.identity.signDetached(b));
  const ids: string[] = [];
  for (const f of files) {
    const r = await fetch(`${up.url}${SYNC_BASE}/usage`, { method: 'POST', body: readFileSync(f), headers: { 'content-type': BUNDLE_MEDIA_TYPE } });
    expect(r.status).toBe(202);
    ids.push((await readManifest(f)).manifest.bundleId);
  }
  await up.kill9();

  up = await serveUpstream(dir);
  const i = h.services.identity;
  for (const id of ids) {
    const target = `${SYNC_BASE}/usage/${id}/response?wait=30`;
    const r = await fetch(up.url + target, { headers: signRequest({ collectorId: i.collectorId, keyId: i.fingerprint, privateKey: i.privateKey }, 'GET', target, Date.now()) });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
  }
  // What the kill left (a job counting, or jobs not yet begun) was taken up by the new process.
  expect(up.log()).toContain('resuming queued sync jobs');

  // The same bundle given to the CLI: processed before, so its response is named again.
  const again = await cli(['upstream', 'process', files[2]!], env);
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toContain('already processed');

  expect(await up.stop('SIGTERM')).toBe(0);
  const db = openUpstreamStore(dir);
  try {
    expect((db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n).toBe(GROWN + 3);
    expect((db.prepare("SELECT count(*) AS n FROM sync_jobs WHERE status = 'done'").get() as { n: number }).n).toBe(3);
  } finally {
    db.close();
  }
  // With the upstream stopped, the CLI opens the store itself.
  const after = JSON.parse((await cli(['upstream', 'status', '--json'], env)).stdout);
  expect(after).toMatchObject({ serving: false, jobs: { done: 3, queued: 0 }, collectors: [expect.objectContaining({ usageHwm: 3 })] });
}, 60_000);
