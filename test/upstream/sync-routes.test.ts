import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, TAG } from '../helpers/harness.js';
import { rewritePayload } from '../helpers/tar-craft.js';
import { SYNC_BASE, HEADER } from '../../src/sync/protocol.js';
import { readManifest } from '../../src/exchange/read.js';
import { enrollOver, responseTarget, startSyncSite, type SyncSite } from './sync-server.js';

let s: SyncSite;
afterEach(async () => s?.close());

const jobs = () => (s.up.service.db.prepare('SELECT count(*) AS n FROM sync_jobs').get() as { n: number }).n;
const counted = () => (s.up.service.db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
const incoming = () => (existsSync(join(s.up.service.dataDir, 'incoming')) ? readdirSync(join(s.up.service.dataDir, 'incoming')) : []);

async function reportAndExport(n = 2): Promise<string> {
  const d = await s.h.registered();
  for (let i = 0; i < n; i++) await d.sendReport(d.report(TAG, 1 + i));
  return s.exportUsage();
}

describe('the upstream serves the exchange (/sync/v1)', () => {
  beforeEach(async () => {
    s = await startSyncSite();
  });

  it('says who it is and which versions it speaks', async () => {
    const r = await fetch(`${s.up.url}${SYNC_BASE}/hello`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ protocol: 'outpost-sync', versions: [1], upstreamId: s.up.service.identity.collectorId, keyId: s.up.service.identity.fingerprint });
  });

  it('when a usage bundle is posted, then it is queued (202), its signed fetch returns a response the collector applies, and posting it again answers the same bytes', async () => {
    const file = await reportAndExport(2);
    const { manifest } = await readManifest(file);
    const posted = await s.post(`${SYNC_BASE}/usage`, file);
    expect(posted.status).toBe(202);
    expect(posted.body).toMatchObject({ status: 'queued', bundleId: manifest.bundleId, sequence: manifest.sequence, location: responseTarget(manifest.bundleId) });
    expect(posted.headers.get('location')).toBe(responseTarget(manifest.bundleId));
    expect(posted.headers.get('retry-after')).toBe('1');

    const got = await s.fetchSigned(responseTarget(manifest.bundleId, 20));
    expect(got.status).toBe(200);
    expect(got.headers.get(HEADER.responseSequence)).toBe('1');
    expect(Number(got.headers.get('content-length'))).toBe(got.bytes.length);
    const applied = await s.applyResponse(got.bytes);
    expect(applied.status).toBe(200);
    expect(applied.body.acks.accepted).toBe(2);

    const again = await s.post(`${SYNC_BASE}/usage`, file);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'answered', bundleId: manifest.bundleId, responseSequence: 1 });
    const second = await s.fetchSigned(responseTarget(manifest.bundleId));
    expect(second.bytes.equals(got.bytes)).toBe(true);
    expect(counted()).toBe(2);
    expect(jobs()).toBe(1);
  });

  it('when a different bundle at or below the high-water mark is posted, then 409 replay; the same id with other bytes, then 409 bundle_conflict', async () => {
    const older = await reportAndExport(1);
    const newer = await reportAndExport(1);
    const id = (await readManifest(newer)).manifest.bundleId;
    expect((await s.post(`${SYNC_BASE}/usage`, newer)).status).toBe(202);
    expect((await s.fetchSigned(responseTarget(id, 20))).status).toBe(200);
    const replay = await s.post(`${SYNC_BASE}/usage`, older);
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('replay');

    const altered = join(s.h.dir, 'altered.opb');
    rewritePayload(newer, altered, 'reports.ndjson.gz', (lines) => lines.map((l, i) => (i === 0 ? `${l} ` : l)), (b) => s.h.services.identity.signDetached(b));
    expect((await readManifest(altered)).manifest.bundleId).toBe(id);
    const conflict = await s.post(`${SYNC_BASE}/usage`, altered);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('bundle_conflict');
    expect(jobs()).toBe(1);
  });

  it('when a bundle is badly signed or from a collector never enrolled, then 400 with the reason and nothing is stored', async () => {
    const file = await reportAndExport(1);
    const forged = join(s.h.dir, 'forged.opb');
    rewritePayload(file, forged, 'reports.ndjson.gz', (l) => l, () => Buffer.alloc(64, 7));
    const bad = await s.post(`${SYNC_BASE}/usage`, forged);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('bad_signature');

    const stranger = await startHarness();
    try {
      const d = await stranger.registered();
      await d.sendReport(d.report(TAG, 1));
      const theirs = (await stranger.api.post('/api/v1/exchange/export').send({}).expect(200)).body.file as string;
      const unknown = await s.post(`${SYNC_BASE}/usage`, theirs);
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.code).toBe('unknown_collector');
    } finally {
      await stranger.close();
    }
    expect(jobs()).toBe(0);
    expect(incoming()).toEqual([]);
    expect(readdirSync(s.up.jobs.dir)).toEqual([]);
  });

  it('when an answer is fetched unsigned, by another collector, or for a bundle never received, then 401, 404 and 404', async () => {
    const file = await reportAndExport(1);
    const id = (await readManifest(file)).manifest.bundleId;
    expect((await s.post(`${SYNC_BASE}/usage`, file)).status).toBe(202);
    const unsigned = await fetch(s.up.url + responseTarget(id));
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as any).error.code).toBe('unsigned');

    const other = await startHarness();
    try {
      await enrollOver(other, s.up);
      const theirs = await s.fetchSigned(responseTarget(id, 5), other);
      expect(theirs.status).toBe(404);
      expect(theirs.body.error.code).toBe('unknown_bundle');
    } finally {
      await other.close();
    }
    // A signature made for another target does not carry over.
    const target = responseTarget(id);
    const { signRequest } = await import('../../src/sync/protocol.js');
    const i = s.h.services.identity;
    const moved = await fetch(s.up.url + target + '?wait=1', { headers: signRequest({ collectorId: i.collectorId, keyId: i.fingerprint, privateKey: i.privateKey }, 'GET', target, Date.now()) });
    expect(moved.status).toBe(401);
    expect(((await moved.json()) as any).error.code).toBe('bad_signature');
    const never = await s.fetchSigned(responseTarget('bun_000000000ffffffffffffffff'));
    expect(never.status).toBe(404);
  });

  it('when a request names a protocol version it does not speak, then 400 unsupported_version naming those it accepts', async () => {
    const r = await fetch(`${s.up.url}${SYNC_BASE}/hello`, { headers: { [HEADER.version]: '2' } });
    expect(r.status).toBe(400);
    const body = (await r.json()) as any;
    expect(body.error.code).toBe('unsupported_version');
    expect(body.error.message).toContain('versions 1');
  });

  it('when an answer is long-polled, then it comes as soon as the job ends', async () => {
    const file = await reportAndExport(3);
    const id = (await readManifest(file)).manifest.bundleId;
    const posted = s.post(`${SYNC_BASE}/usage`, file);
    const t0 = Date.now();
    expect((await posted).status).toBe(202);
    const got = await s.fetchSigned(responseTarget(id, 60));
    expect(got.status).toBe(200);
    // The wait (maxWaitSeconds 30) was not spent: the job's end woke the fetch.
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect((await s.applyResponse(got.bytes)).body.acks.accepted).toBe(3);
  });
});

describe('the upstream bounds what it is sent', () => {
  it('when a body is larger than upstream.maxBundleBytes, then 413 too_large and nothing is kept', async () => {
    s = await startSyncSite({ maxBundleBytes: 1000 });
    const file = await reportAndExport(1);
    expect(readFileSync(file).length).toBeGreaterThan(1000);
    const r = await s.post(`${SYNC_BASE}/usage`, file);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('too_large');
    expect(incoming()).toEqual([]);
    expect(jobs()).toBe(0);
  });
});
