import Database from 'better-sqlite3';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { readBackup } from '../../src/backup/format.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { latestVersion as latestMigration } from '../../src/store/migrate.js';
import { readFloorFile, floorFile } from '../../src/time/floor-file.js';
import { checkTrail } from '../../src/events/trail-check.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';
import type { Checkpoint } from '../../src/events/checkpoint.js';

/**
 * Backups through the operator API of a real collector on a real store, and restores of them
 * into its data folder with the collector stopped, as `outpost backup` and `outpost restore` do.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const start = async (dataDir: string, config: Record<string, unknown> = {}) => (h = await startHarness({ config: { dataDir, ...config } }));
const stop = async () => {
  await h!.close();
  h = undefined;
};
const restore = (dataDir: string, file: string, now = Date.now()) => restoreBackup({ dataDir, file, now: () => now, actor: 'test' });

/** A backup made over the API: `file` is accepted only over the local socket, so the service is called as the socket route would. */
const backupTo = (hh: Harness, file: string, withKeys = false) => hh.services.backups.backup({ file, withKeys, actor: 'test' });

async function send(d: SimulatedDevice, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await d.sendKeeping([d.report(TAG, 1 + (i % 3))]);
    expect(r.response.status, JSON.stringify(r.response.body)).toBe(200);
  }
}

describe('when a backup is made while devices report', () => {
  it('then it is a consistent copy with mode 0600 and a manifest, every report answered 2xx is in the store, and none is lost to it', async () => {
    const dataDir = join(tempDir('backup'), 'data');
    const hh = await start(dataDir);
    const devices = await Promise.all([1, 2, 3, 4].map((i) => hh.registered(`BK${i}`)));
    await Promise.all(devices.map((d) => send(d, 20)));
    // A store of some size, so that the copy takes a while as the devices go on.
    hh.services.db.exec("CREATE TABLE padding (b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO padding SELECT randomblob(2000) FROM n");
    const file = join(tempDir('backups'), 'b1.db');
    const seen: { done: number; total: number | null }[] = [];
    const during = Promise.all(devices.map((d) => send(d, 25)));
    const made = await hh.services.backups.backup({ file, withKeys: false, actor: 'test', onProgress: (p) => seen.push(p) });
    await during;
    expect(seen.at(-1)).toMatchObject({ done: seen.at(-1)!.total }); // progress ends at its total
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { manifest, keys } = readBackup(file, { latestSchema: latestMigration() });
    expect(manifest).toMatchObject({ collectorId: hh.services.identity.collectorId, withKeys: false, keys: [], reason: 'manual', schemaVersion: latestMigration() });
    expect(keys.size).toBe(0);
    expect(made.eventHead.id).toBe(manifest.eventHead.id);
    // Consistent: the copy's in-use equals the sum over its own device usage, and it holds between the two counts.
    const copy = new Database(file, { readonly: true });
    const inCopy = copy.prepare("SELECT count(*) FROM reports WHERE source = 'device'").pluck().get() as number;
    expect(copy.prepare('SELECT coalesce(sum(in_use), 0) FROM va_usage').pluck().get()).toBe(copy.prepare('SELECT coalesce(sum(count), 0) FROM device_usage').pluck().get());
    copy.close();
    expect(inCopy).toBeGreaterThanOrEqual(80);
    expect(inCopy).toBeLessThanOrEqual(180);
    expect(hh.count("SELECT count(*) FROM reports WHERE source = 'device'")).toBe(180);
    expect(hh.count("SELECT count(*) FROM events WHERE type = 'backup.created'")).toBe(1);
  });

  it('then a file that exists is never overwritten, a path over the network is refused, and --with-keys carries the keys', async () => {
    const dataDir = join(tempDir('backup'), 'data');
    const hh = await start(dataDir);
    const dir = tempDir('backups');
    const taken = join(dir, 'taken.db');
    writeFileSync(taken, 'mine');
    await expect(backupTo(hh, taken)).rejects.toMatchObject({ code: 'file_exists' });
    expect(readFileSync(taken, 'utf8')).toBe('mine');
    const r = await hh.api.post('/api/v1/backups').send({ file: join(dir, 'net.db') });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('file_over_network');
    expect(existsSync(join(dir, 'net.db'))).toBe(false);
    const bad = await hh.api.post('/api/v1/backups').send({ withKeys: 'yes' });
    expect(bad.status).toBe(400);

    // A webhook key the collector made is a key like its own: a backup with keys carries it.
    const sink = await hh.api.post('/api/v1/notifications/sinks').send({ kind: 'webhook', name: 'hook', webhook: { url: 'http://127.0.0.1:9/hook' } });
    expect(sink.status, JSON.stringify(sink.body)).toBe(201);
    const withKeys = join(dir, 'keys.db');
    await backupTo(hh, withKeys, true);
    const { manifest, keys } = readBackup(withKeys, { latestSchema: latestMigration() });
    expect(manifest.withKeys).toBe(true);
    expect(manifest.keys).toEqual(expect.arrayContaining(['collector.key', 'collector.json']));
    const hookKey = manifest.keys.find((k) => k.startsWith('webhook-'));
    expect(hookKey, 'the made webhook key').toBeDefined();
    expect(keys.get(hookKey!)!.content.toString().trim()).toBe(sink.body.secret);
    expect(keys.get('collector.key')!.content.equals(readFileSync(join(dataDir, 'keys', 'collector.key')))).toBe(true);
  });

  it('then --with-keys without a file (into backup.dir) carries the keys though backup.withKeys is off, and a folder not made yet is made private', async () => {
    const dataDir = join(tempDir('backup'), 'data');
    const dir = join(tempDir('sched'), 'not', 'yet');
    const hh = await start(dataDir, { backup: { dir, withKeys: false } });
    const r = await hh.api.post('/api/v1/backups').send({ withKeys: true });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(readBackup(r.body.file, { latestSchema: latestMigration() }).manifest).toMatchObject({ withKeys: true });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await new Promise((res) => setTimeout(res, 1100)); // names are stamped to the second
    const plain = await hh.api.post('/api/v1/backups').send({});
    expect(readBackup(plain.body.file, { latestSchema: latestMigration() }).manifest).toMatchObject({ withKeys: false });
    // A file named in a folder that does not exist yet (a pre-upgrade copy before the first scheduled run).
    const named = join(tempDir('upgrade'), 'backups', 'pre-upgrade.db');
    await backupTo(hh, named, true);
    expect(statSync(named).mode & 0o777).toBe(0o600);
  });

  it('then scheduled backups go to backup.dir and the oldest beyond backup.keep are deleted', async () => {
    const dataDir = join(tempDir('backup'), 'data');
    const dir = join(tempDir('sched'), 'b');
    const hh = await start(dataDir, { backup: { dir, keep: 2 } });
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push((await hh.services.backups.scheduled()).backup.file);
      await new Promise((r) => setTimeout(r, 1100)); // names are stamped to the second
    }
    const listed = (await hh.api.get('/api/v1/backups')).body;
    expect(listed.backups.map((b: { file: string }) => b.file)).toEqual([made[2], made[1]]);
    expect(readdirSync(dir).sort()).toEqual([made[1]!, made[2]!].map((f) => f.slice(dir.length + 1)).sort());
    expect(hh.count("SELECT count(*) FROM events WHERE type = 'backup.pruned'")).toBe(1);
    // The last success is the trail's: a restart keeps it.
    expect(Date.parse(listed.lastSuccessAt)).toBeGreaterThan(0);
    await stop();
    const again = await start(dataDir, { backup: { dir, keep: 2 } });
    expect((await again.api.get('/api/v1/backups')).body.lastSuccessAt).toBe(listed.lastSuccessAt);
  }, 30_000);
});

describe('when a backup is restored', () => {
  it('then it is refused while a collector runs, and a damaged, foreign or newer backup is refused before anything changes', async () => {
    const dataDir = join(tempDir('restore'), 'data');
    const hh = await start(dataDir);
    const dir = tempDir('backups');
    const good = join(dir, 'good.db');
    await backupTo(hh, good);
    expect(() => restore(dataDir, good)).toThrow(expect.objectContaining({ code: 'collector_running' }));
    await stop();
    const before = readFileSync(join(dataDir, 'outpost.db'));

    const damaged = join(dir, 'damaged.db');
    const bytes = readFileSync(good);
    bytes.fill(0x5a, 8192, 16384); // two pages in the middle
    writeFileSync(damaged, bytes);
    expect(() => restore(dataDir, damaged)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^backup_(corrupt|unreadable)$/) }));

    const plain = join(dir, 'plain.db');
    new Database(plain).exec('CREATE TABLE t (x)');
    expect(() => restore(dataDir, plain)).toThrow(expect.objectContaining({ code: 'not_a_backup' }));

    const newer = join(dir, 'newer.db');
    copyFileSync(good, newer);
    const n = new Database(newer);
    const m = JSON.parse(n.prepare('SELECT manifest FROM outpost_backup').pluck().get() as string);
    n.prepare('UPDATE outpost_backup SET manifest = ?').run(JSON.stringify({ ...m, schemaVersion: 999 }));
    n.pragma('user_version = 999');
    n.close();
    expect(() => restore(dataDir, newer)).toThrow(expect.objectContaining({ code: 'backup_too_new' }));

    const other = join(dir, 'other.db');
    const o = await start(join(tempDir('other'), 'data'));
    await backupTo(o, other);
    await stop();
    expect(() => restore(dataDir, other)).toThrow(expect.objectContaining({ code: 'other_collector' }));

    expect(readFileSync(join(dataDir, 'outpost.db')).equals(before)).toBe(true);
    expect(readdirSync(dataDir).filter((f) => f.includes('before-restore') || f.includes('restoring'))).toEqual([]);
  });

  it('then the higher time floor, the device keys and registrations made since, and the acknowledgements since are kept; devices learn what was lost and send it again', async () => {
    const dataDir = join(tempDir('restore'), 'data');
    let hh = await start(dataDir);
    const a = await hh.registered('KEEP-A');
    const b = await hh.registered('KEEP-B');
    await send(a, 5);
    await send(b, 5);
    const file = join(tempDir('backups'), 'b.db');
    await backupTo(hh, file);
    const backupFloor = readBackup(file, { latestSchema: latestMigration() }).manifest.timeFloorMs;

    // After the backup: more reports, a re-key, a new device, and an acknowledgement.
    await send(a, 4);
    await send(b, 3);
    b.newKey();
    const rekey = await b.register(await hh.token());
    expect(rekey.status).toBe(202); // pending: an operator approves it
    expect((await hh.api.post(`/api/v1/devices/${b.deviceId}/rekey/approve`).send({})).status).toBe(200);
    const c = await hh.registered('KEEP-C');
    await send(c, 2);
    const aReport = hh.services.db.prepare("SELECT id FROM reports WHERE device_id = ? AND report_id LIKE '%-1-%'").pluck().get(a.deviceId) as number;
    hh.services.db.prepare("DELETE FROM report_pending WHERE destination = 'outpost' AND report_id = ?").run(aReport);
    hh.services.db.prepare("INSERT INTO report_acks (destination, report_id, status, reason, acked_at) VALUES ('outpost', ?, 'accepted', NULL, ?)").run(aReport, Date.now());
    const checkpointsBefore = hh.services.checkpoints.all();
    const abandoned = hh.services.checkpoints.make('manual')!; // a checkpoint of events the restore sets aside
    expect(abandoned.eventId).toBeGreaterThan(readBackup(file, { latestSchema: latestMigration() }).manifest.eventHead.id);
    await stop();
    const installFloor = Math.max(backupFloor, Date.now()) + 3_600_000;
    writeFileSync(floorFile(dataDir), JSON.stringify({ floorMs: installFloor }));

    const r = restore(dataDir, file);
    expect(r.epoch).toBe(1);
    expect(Date.parse(r.timeFloor.kept)).toBe(installFloor);
    expect(readFloorFile(floorFile(dataDir))).toBe(installFloor);
    expect(r.previousStore).toMatch(/outpost\.db\.before-restore-/);
    expect(existsSync(r.previousStore!)).toBe(true);
    expect(r.kept.join('\n')).toMatch(/1 device key\(s\) changed/);
    expect(r.kept.join('\n')).toMatch(/1 device\(s\) registered since/);
    expect(r.kept.join('\n')).toMatch(/1 acknowledgement\(s\)/);

    hh = await start(dataDir);
    // The restarted collector listens on another port: the devices are pointed at it.
    for (const d of [a, b, c]) (d as { baseUrl: string }).baseUrl = hh.url;
    // The install's floor held: the trusted time goes on from it, however the restored store's was lower.
    expect(Date.parse(hh.services.time.status().floor)).toBeGreaterThanOrEqual(installFloor);
    expect(hh.count("SELECT count(*) FROM reports WHERE device_id = ?", a.deviceId)).toBe(5);
    expect(hh.count("SELECT count(*) FROM report_pending WHERE report_id = ?", aReport)).toBe(0);
    const restored = JSON.parse(hh.services.db.prepare("SELECT details FROM events WHERE type = 'collector.restored'").pluck().get() as string);
    expect(restored).toMatchObject({ epoch: 1, statement: { epoch: 1, collectorId: hh.services.identity.collectorId } });
    expect(hh.services.exchange.state.epochStatement).toMatchObject({ epoch: 1 });

    // Each device's next report is answered with what the collector holds; it sends the rest again.
    const ra = await a.sendKeeping([a.report(TAG, 2)]);
    expect(ra.response.body.heldSeq).toBe(5);
    expect(ra.resent).toBe(4);
    const rb = await b.sendKeeping([b.report(TAG, 2)]); // signs with its new key: kept by the restore
    expect(rb.response.status).toBe(200);
    expect(rb.resent).toBe(3);
    const rc = await c.sendKeeping([c.report(TAG, 2)]);
    expect(rc.response.body.heldSeq).toBe(null);
    expect(rc.resent).toBe(2);
    expect(hh.count("SELECT count(*) FROM reports WHERE source = 'device'")).toBe(5 + 4 + 1 + 5 + 3 + 1 + 2 + 1);
    // Steady again: nothing more to send.
    expect((await a.sendKeeping([a.report(TAG, 2)])).resent).toBe(0);

    // The trail reads the abandoned checkpoint as set aside by the restore, not as tampering.
    const all: Checkpoint[] = [...checkpointsBefore, abandoned];
    const report = await checkTrail(hh.services.events, all, 'file');
    expect(report.finding).toBe(null);
    expect(report.restores).toEqual([expect.objectContaining({ supersededCheckpoints: 1 })]);
  }, 60_000);
});
