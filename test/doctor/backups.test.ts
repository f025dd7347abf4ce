import { beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { chmodSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { runDoctor } from '../../src/doctor/run.js';
import { scheduleInterval } from '../../src/doctor/backups.js';
import { DAY, startHarness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';

/** A site that made one backup, then stopped. */
let site: string;
let madeAt: number;

beforeAll(async () => {
  site = join(tempDir('doctor-backups'), 'data');
  const h = await startHarness({ config: { dataDir: site } });
  try {
    await h.api.post('/api/v1/backups').send({}).expect((r) => expect(r.status).toBeLessThan(300));
    madeAt = h.services.db.prepare("SELECT at FROM events WHERE type = 'backup.created'").pluck().get() as number;
  } finally {
    await h.close();
  }
});

function copySite(): string {
  const dir = join(tempDir('doctor-backups-copy'), 'data');
  cpSync(site, dir, { recursive: true });
  chmodSync(dir, 0o700);
  return dir;
}

const backups = async (dir: string, now: number, backup: Record<string, unknown> = {}) =>
  (await runDoctor(loadConfig({ env: {}, overrides: { dataDir: dir, backup } as never }), { now })).find((c) => c.name === 'backups')!;

describe('outpost doctor: backups', () => {
  it('passes a backup within twice the schedule, and warns of one older, with what to do', async () => {
    const dir = copySite();
    expect(await backups(dir, madeAt + 1.5 * DAY)).toMatchObject({ status: 'ok', message: 'the newest backup was made 36 hours ago (backup.cron runs every 24 hours)' });
    const late = await backups(dir, madeAt + 3 * DAY);
    expect(late.status).toBe('warn');
    expect(late.message).toBe("the newest backup was made 3 days ago, over twice backup.cron's interval (24 hours)");
    expect(late.fix).toContain('outpost backup');
    // A weekly schedule: three days is not late.
    expect((await backups(dir, madeAt + 3 * DAY, { cron: '15 2 * * 0' })).status).toBe('ok');
  });

  it('names the last failure when backups have failed since the newest', async () => {
    const dir = copySite();
    const db = new Database(join(dir, 'outpost.db'));
    // The doctor reads the trail; a row as BackupService appends it (the chain is not what is checked here).
    db.prepare("INSERT INTO events (at, type, actor, subject, va_id, details, prev_hash, hash) VALUES (?, 'backup.failed', 'schedule', 'x', NULL, ?, 'p', 'h')")
      .run(madeAt + 2 * DAY, JSON.stringify({ error: 'EROFS: read-only file system' }));
    db.close();
    const late = await backups(dir, madeAt + 3 * DAY);
    expect(late.status).toBe('warn');
    expect(late.message).toContain('the last attempt, 24 hours ago, failed: EROFS: read-only file system');
  });

  it('warns when scheduled backups are off', async () => {
    const off = await backups(copySite(), madeAt + 60_000, { enabled: false });
    expect(off.status).toBe('warn');
    expect(off.message).toBe('scheduled backups are off (backup.enabled is false); the newest backup was made 0 hours ago');
    expect(off.fix).toContain('backup.enabled');
  });

  it('reads the longest gap of a schedule', () => {
    const from = Date.UTC(2026, 10, 30);
    expect(scheduleInterval('15 2 * * *', 'UTC', from)).toBe(DAY);
    expect(scheduleInterval('15 2 * * 1-5', 'UTC', from)).toBe(3 * DAY);
  });
});
