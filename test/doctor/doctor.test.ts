import { beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import Database from 'better-sqlite3';
import { chmodSync, closeSync, cpSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Check } from '../../src/doctor/check.js';
import { runDoctor } from '../../src/doctor/run.js';
import { floorFile, readFloorFile, writeFloorFile } from '../../src/time/floor-file.js';
import { startHarness, TAG } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { cli } from '../helpers/processes.js';

/** A site as an operator leaves it: the collector started once, with devices, reports and a sealed secret, then stopped. */
let site: string;

beforeAll(async () => {
  site = join(tempDir('doctor'), 'data');
  const h = await startHarness({ config: { dataDir: site } });
  try {
    for (let i = 0; i < 3; i++) {
      const d = await h.registered(`DOC${i}`);
      for (let n = 0; n < 20; n++) expect((await d.sendReport(d.report(TAG, n))).status).toBeLessThan(300);
    }
    h.services.cloud.credentials.set('cloud-client-secret-for-doctor', 'test');
    // As the running collector does at start and on its schedule: the trusted-time floor is stored.
    h.services.time.check();
  } finally {
    await h.close();
  }
});

/** A copy of the healthy site to break, so each case sees one problem. */
function copySite(): string {
  const dir = join(tempDir('doctor-copy'), 'data');
  cpSync(site, dir, { recursive: true });
  chmodSync(dir, 0o700);
  return dir;
}

const configFor = (dataDir: string, extra: Record<string, unknown> = {}) => loadConfig({ env: {}, overrides: { dataDir, ...extra } as never });
const problems = (checks: Check[]) => checks.filter((c) => c.status === 'fail');
const closedPort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

describe('outpost doctor', () => {
  it('passes a healthy install, run as the real command', async () => {
    const r = await cli(['doctor', '--data-dir', site, '--config', join(process.cwd(), 'config/default.json')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok +database +.*intact \(quick_check\)/m);
    expect(r.stdout).toMatch(/^ok +secret key/m);
    expect(r.stdout).toContain('0 failure(s)');
    const json = await cli(['doctor', '--json', '--data-dir', site]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
    expect(body.ok).toBe(true);
    expect(body.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['config', 'file modes', 'free disk', 'database', 'clock', 'secret key', 'identity key', 'last export', 'upstream']));
  });

  it('fails a key file its group or others may read, and says to chmod it', async () => {
    const dir = copySite();
    const key = join(dir, 'keys', 'collector.key');
    chmodSync(key, 0o644);
    const r = await cli(['doctor', '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^fail +key file mode +${key} may be read by its group or others \\(mode 0644\\)`, 'm'));
    expect(r.stdout).toContain(`fix: chmod 600 ${key}`);
  });

  it('fails a damaged database copy, and says to restore', async () => {
    const dir = copySite();
    const db = join(dir, 'outpost.db');
    const size = statSync(db).size;
    expect(size).toBeGreaterThan(64 * 1024);
    // Garbage over the middle of the file, where the tables' pages are.
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(16 * 1024, 0xa5), 0, 16 * 1024, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    const checks = await runDoctor(configFor(dir));
    const bad = problems(checks);
    expect(bad.map((c) => c.name)).toContain('database integrity');
    expect(bad.find((c) => c.name === 'database integrity')!.fix).toContain('outpost restore');
  });

  it('fails an upstream that does not answer in connected mode', async () => {
    const dir = copySite();
    const url = `http://127.0.0.1:${await closedPort()}`;
    const checks = await runDoctor(configFor(dir, { exchange: { mode: 'connected', upstream: { kind: 'outpost' }, connection: { url } } }), { timeoutMs: 2000 });
    const up = checks.find((c) => c.name === 'upstream')!;
    expect(up.status).toBe('fail');
    expect(up.message).toContain(`the upstream at ${url} cannot be reached (ECONNREFUSED)`);
    expect(up.fix).toContain('outpost upstream serve');
  });

  it('fails keys missing after a restore: a sealed secret without secrets.key, a known identity without its key', async () => {
    const dir = copySite();
    unlinkSync(join(dir, 'keys', 'secrets.key'));
    unlinkSync(join(dir, 'keys', 'collector.key'));
    const r = await cli(['doctor', '--json', '--data-dir', dir]);
    expect(r.code).toBe(1);
    const body = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    expect(body.ok).toBe(false);
    const secret = body.checks.find((c) => c.name === 'secret key')!;
    expect(secret.status).toBe('fail');
    expect(secret.message).toContain("the Cisco cloud client secret");
    expect(secret.message).toContain('which is missing (restored without keys?)');
    expect(secret.fix).toContain('backup made with --with-keys');
    expect(secret.fix).toContain('outpost cisco cloud credentials --secret-file FILE');
    const identity = body.checks.find((c) => c.name === 'identity key')!;
    expect(identity.status).toBe('fail');
    expect(identity.fix).toContain('collector.key');
  });

  it('fails a secrets.key that does not open the sealed secrets', async () => {
    const dir = copySite();
    const key = join(dir, 'keys', 'secrets.key');
    unlinkSync(key);
    cpSync(join(dir, 'keys', 'collector.key'), key); // another 32-byte key, mode kept 0600
    chmodSync(key, 0o600);
    const secret = (await runDoctor(configFor(dir))).find((c) => c.name === 'secret key')!;
    expect(secret.status).toBe('fail');
    expect(secret.message).toContain('does not open the Cisco cloud client secret');
  });

  it('fails a system clock behind the trusted-time floor', async () => {
    const checks = await runDoctor(configFor(copySite()), { now: Date.now() - 3 * 86_400_000 });
    const clock = checks.find((c) => c.name === 'clock')!;
    expect(clock.status).toBe('fail');
    expect(clock.message).toContain('is behind the trusted-time floor');
    expect(clock.fix).toContain('NTP');
  });

  it('judges the clock by the floor file when it is above the database\'s floor (a restore of an older backup)', async () => {
    const dir = copySite();
    const ahead = Date.now() + 10 * 86_400_000;
    writeFloorFile(floorFile(dir), ahead);
    const clock = (await runDoctor(configFor(dir))).find((c) => c.name === 'clock')!;
    expect(clock.status).toBe('fail');
    expect(clock.message).toContain(`is behind the trusted-time floor (${new Date(ahead).toISOString()} (from ${floorFile(dir)}, above the database's`);
    expect(clock.fix).toContain('NTP');
  });

  it('warns when the floor file is missing while the database holds a floor, and still judges the clock by the database', async () => {
    const dir = copySite();
    expect(readFloorFile(floorFile(dir))).toBeGreaterThan(0);
    unlinkSync(floorFile(dir));
    const checks = await runDoctor(configFor(dir));
    const file = checks.find((c) => c.name === 'time floor file')!;
    expect(file.status).toBe('warn');
    expect(file.message).toContain(`${floorFile(dir)} is missing`);
    expect(file.fix).toContain('writes the file again within a minute');
    expect(checks.find((c) => c.name === 'clock')!.status).toBe('ok');
    const behind = (await runDoctor(configFor(dir), { now: Date.now() - 3 * 86_400_000 })).find((c) => c.name === 'clock')!;
    expect(behind.status).toBe('fail');
  });

  it('warns of what the last restore could not keep, each with what to do', async () => {
    const dir = copySite();
    const lost = [
      'the collector identity (keys/collector.key) is neither on this install nor in the backup: a new identity is made at start, and the upstream must enroll it again (`outpost sync enroll` or an enrollment bundle)',
      "the client secret for Cisco's cloud was sealed with keys/secrets.key, which neither this install nor the backup has: set it again (`outpost cisco cloud credentials --secret-file F`)",
    ];
    const db = new Database(join(dir, 'outpost.db'));
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('restore.last', ?)").run(JSON.stringify({ at: '2026-11-20T10:00:00.000Z', backup: 'site.outpost-backup', epoch: 2, kept: [], lost }));
    db.close();
    const restore = (await runDoctor(configFor(dir))).filter((c) => c.name === 'restore');
    expect(restore.map((c) => c.status)).toEqual(['warn', 'warn']);
    expect(restore[0]!.message).toBe('the restore of site.outpost-backup on 2026-11-20T10:00:00.000Z (epoch 2) could not keep: the collector identity (keys/collector.key) is neither on this install nor in the backup');
    expect(restore[0]!.fix).toBe('a new identity is made at start, and the upstream must enroll it again (`outpost sync enroll` or an enrollment bundle)');
    expect(restore[1]!.fix).toBe('set it again (`outpost cisco cloud credentials --secret-file F`)');
    const r = await cli(['doctor', '--data-dir', dir]);
    expect(r.stdout).toMatch(/^warn +restore +the restore of site\.outpost-backup/m);
    expect(r.stdout).toContain('fix: set it again (`outpost cisco cloud credentials --secret-file F`)');
  });

  it('reports a restore that kept everything as ok', async () => {
    const dir = copySite();
    const db = new Database(join(dir, 'outpost.db'));
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('restore.last', ?)").run(JSON.stringify({ at: '2026-11-20T10:00:00.000Z', backup: 'b.outpost-backup', epoch: 1, kept: ['x'], lost: [] }));
    db.close();
    const restore = (await runDoctor(configFor(dir))).filter((c) => c.name === 'restore');
    expect(restore).toEqual([{ name: 'restore', status: 'ok', message: 'the restore of b.outpost-backup on 2026-11-20T10:00:00.000Z (epoch 1) kept everything' }]);
  });

  it('fails a configuration that does not validate, naming the key', async () => {
    const r = await cli(['doctor', '--data-dir', site], { OUTPOST_READY_MIN_FREE_DISK_MB: 'lots' });
    expect(r.code).toBe(78);
    expect(r.stdout).toMatch(/^fail +config +invalid configuration:/m);
    expect(r.stdout).toContain('ready.minFreeDiskMb');
  });
});

