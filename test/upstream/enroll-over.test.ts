import { afterEach, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/harness.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { adminCall } from '../../src/upstream/server/admin-client.js';
import { signRequest, SYNC_BASE, BUNDLE_MEDIA_TYPE } from '../../src/sync/protocol.js';

let h: Harness;
let up: RunningUpstream;
afterEach(async () => {
  await up?.stop(0);
  await h?.close();
});

it('when a collector enrolls over the connection, then it waits (202) until the operator pins its fingerprint, then fetches a response its EnrollmentService trusts', async () => {
  h = await startHarness();
  up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(h.dir, 'upstream'), port: 0 } } as never }), { logger: createLogger('error', true) });
  const req = await h.services.exchange.enrollment.request('ACME', 'test');
  const post = async () => {
    const r = await fetch(`${up.url}${SYNC_BASE}/enroll`, { method: 'POST', body: readFileSync(req.file), headers: { 'content-type': BUNDLE_MEDIA_TYPE } });
    return { status: r.status, body: await r.json() };
  };
  const posted = await post();
  expect(posted).toMatchObject({ status: 202, body: { status: 'pending', collectorId: req.collectorId, fingerprint: req.fingerprint, location: `${SYNC_BASE}/enroll/${req.collectorId}` } });

  const id = h.services.identity;
  const target = `${SYNC_BASE}/enroll/${req.collectorId}`;
  const fetchSigned = () => fetch(up.url + target, { headers: signRequest({ collectorId: id.collectorId, keyId: id.fingerprint, privateKey: id.privateKey }, 'GET', target, Date.now()) });
  expect((await fetchSigned()).status).toBe(202);
  expect((await fetch(up.url + target)).status).toBe(401);

  // The upstream's operator sees the request with its fingerprint, and pins it over the socket.
  const pending = await adminCall(up.socketPath, 'collectorPending', {});
  expect(pending).toEqual([expect.objectContaining({ collectorId: req.collectorId, fingerprint: req.fingerprint, accountName: 'ACME' })]);
  await expect(adminCall(up.socketPath, 'collectorAdd', { pending: req.collectorId, account: 'ACME', fingerprint: '00:00' })).rejects.toMatchObject({ code: 'fingerprint_mismatch' });
  const pinned = await adminCall(up.socketPath, 'collectorAdd', { pending: req.collectorId, account: 'ACME', fingerprint: req.fingerprint });
  expect(pinned.pinned).toBe(true);

  const got = await fetchSigned();
  expect(got.status).toBe(200);
  const file = join(h.dir, 'enrollment-response.opb');
  writeFileSync(file, Buffer.from(await got.arrayBuffer()));
  const trusted = await h.services.exchange.enrollment.trust(file, up.service.identity.fingerprint, 'test');
  expect(trusted.pinned).toBe(true);
  expect(h.services.exchange.state.upstreamKeys()).toHaveLength(1);
  // Posted again once enrolled: 200, nothing pending.
  expect(await post()).toMatchObject({ status: 200, body: { status: 'enrolled' } });
  expect(await adminCall(up.socketPath, 'collectorPending', {})).toEqual([]);
});
