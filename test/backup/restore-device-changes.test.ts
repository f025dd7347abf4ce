import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { restoreBackup } from '../../src/backup/restore.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';

/**
 * A restore into the data folder of a stopped collector keeps the deregistrations and the VA
 * moves the replaced store made after the backup, and leaves compliance without drift.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const start = async (dataDir: string) => (h = await startHarness({ config: { dataDir } }));

async function report(d: SimulatedDevice, count: number): Promise<void> {
  const r = await d.sendKeeping([d.report(TAG, count)]);
  expect(r.response.status, JSON.stringify(r.response.body)).toBe(200);
}

/** In use of TAG per VA, as GET /compliance answers. */
async function inUse(hh: Harness): Promise<Record<string, { inUse: number; devices: number }>> {
  const items = (await hh.api.get('/api/v1/compliance').expect(200)).body.items as { vaId: string; tags: { tag: string; inUse: number; devices: number }[] }[];
  const out: Record<string, { inUse: number; devices: number }> = {};
  for (const va of items) {
    const t = va.tags.find((x) => x.tag === TAG);
    if (t) out[va.vaId] = { inUse: t.inUse, devices: t.devices };
  }
  return out;
}

it('when devices are deregistered and moved after a backup and the backup is restored, then they stay deregistered and moved, and compliance of both VAs has no drift', async () => {
  const dataDir = join(tempDir('restore-devices'), 'data');
  let hh = await start(dataDir);
  const home = ((await hh.api.get('/api/v1/virtual-accounts').expect(200)).body.items as { id: string }[])[0]!.id;
  const other = (await hh.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id as string;
  const gone = await hh.registered('GONE-1', home);
  const mover = await hh.registered('MOVE-1', home);
  const stays = await hh.registered('STAY-1', home);
  await report(gone, 3);
  await report(mover, 5);
  await report(stays, 7);
  // Let go before the backup, and let back in after it (an operator approved its revival).
  const back = await hh.registered('BACK-1', home);
  await report(back, 2);
  expect((await hh.api.post(`/api/v1/devices/${back.deviceId}/deregister`).send({})).status).toBe(200);
  const file = join(tempDir('backups'), 'b.db');
  await hh.services.backups.backup({ file, withKeys: false, actor: 'test' });
  expect(await inUse(hh)).toEqual({ [home]: { inUse: 15, devices: 3 } });

  // After the backup: one device let go, one moved to the other VA.
  expect((await hh.api.post(`/api/v1/devices/${gone.deviceId}/deregister`).send({})).status).toBe(200);
  expect((await hh.api.post(`/api/v1/devices/${mover.deviceId}/move`).send({ vaId: other })).status).toBe(200);
  expect((await back.register(await hh.token())).status).toBe(202);
  await hh.api.post(`/api/v1/devices/${back.deviceId}/rekey/approve`).expect(200);
  const expected = { [home]: { inUse: 7, devices: 1 }, [other]: { inUse: 5, devices: 1 } };
  expect(await inUse(hh)).toEqual(expected);
  await h!.close();
  h = undefined;

  const r = restoreBackup({ dataDir, file, now: () => Date.now(), actor: 'test' });
  expect(r.devices).toEqual({ deregistered: [gone.deviceId], revived: [back.deviceId], moved: [{ device: mover.deviceId, from: home, to: other }], recounted: [home, other].sort() });
  expect(r.kept.join('\n')).toMatch(/1 device\(s\) deregistered since the backup stay deregistered/);
  expect(r.kept.join('\n')).toMatch(/1 device\(s\) moved to another virtual account since the backup/);
  expect(r.kept.join('\n')).toMatch(/1 device\(s\) registered again since the backup stay registered/);

  hh = await start(dataDir);
  expect((await hh.api.get(`/api/v1/devices/${gone.deviceId}`).expect(200)).body.status).toBe('deregistered');
  expect((await hh.api.get(`/api/v1/devices/${gone.deviceId}/usage`).expect(200)).body).toMatchObject({ counted: false, items: [] });
  expect((await hh.api.get(`/api/v1/devices/${mover.deviceId}`).expect(200)).body.vaId).toBe(other);
  expect(await inUse(hh)).toEqual(expected);
  // The counters the restore wrote are those a rebuild from the device usage gives.
  expect((await hh.api.post('/api/v1/compliance/verify').send({}).expect(200)).body.drift).toEqual([]);
  const event = JSON.parse(hh.services.db.prepare("SELECT details FROM events WHERE type = 'collector.restored'").pluck().get() as string);
  expect(event.devices).toEqual(r.devices);

  // The deregistered device is refused as it was before the restore; the others report on.
  for (const d of [gone, mover, stays, back]) (d as { baseUrl: string }).baseUrl = hh.url;
  const refused = await gone.sendReport(gone.report(TAG, 3));
  expect(refused.status).toBe(401);
  await report(mover, 6);
  // The revived device is registered still: what it reported since the backup, it sends again.
  expect((await hh.api.get(`/api/v1/devices/${back.deviceId}`).expect(200)).body.status).toBe('active');
  await report(back, 4);
  expect(await inUse(hh)).toEqual({ [home]: { inUse: 11, devices: 2 }, [other]: { inUse: 6, devices: 1 } });
  expect((await hh.api.post('/api/v1/compliance/verify').send({}).expect(200)).body.drift).toEqual([]);
}, 60_000);

it('when the store being replaced is older than the backup (a snapshot rolled back), then nothing of it undoes the backup: a device deregistered in the backup stays deregistered', async () => {
  const dataDir = join(tempDir('restore-older'), 'data');
  const hh = await start(dataDir);
  const home = ((await hh.api.get('/api/v1/virtual-accounts').expect(200)).body.items as { id: string }[])[0]!.id;
  const stolen = await hh.registered('STOLEN-1', home);
  await report(stolen, 3);
  const older = join(tempDir('backups'), 'older.db');
  await hh.services.backups.backup({ file: older, withKeys: false, actor: 'test' });
  expect((await hh.api.post(`/api/v1/devices/${stolen.deviceId}/deregister`).send({})).status).toBe(200);
  const file = join(tempDir('backups'), 'newer.db');
  await hh.services.backups.backup({ file, withKeys: false, actor: 'test' });
  await h!.close();
  h = undefined;
  // The disk now holds a store from before the deregistration, as a rolled-back snapshot leaves it.
  copyFileSync(older, join(dataDir, 'outpost.db'));
  for (const f of ['outpost.db-wal', 'outpost.db-shm']) rmSync(join(dataDir, f), { force: true });

  const r = restoreBackup({ dataDir, file, now: () => Date.now(), actor: 'test' });
  expect(r.devices).toBeNull();
  expect(r.lost.join('\n')).toMatch(/does not go on from the backup/);
  const back = await start(dataDir);
  expect((await back.api.get(`/api/v1/devices/${stolen.deviceId}`).expect(200)).body.status).toBe('deregistered');
  expect((await back.api.post('/api/v1/compliance/verify').send({}).expect(200)).body.drift).toEqual([]);
}, 60_000);
