import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { latestMigration, Readiness } from '../../src/metrics/readiness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('GET /readyz', () => {
  it('when the collector is healthy, then it is ready and says so check by check', async () => {
    const x = (h = await startHarness());
    const res = await x.api.get('/readyz').expect(200);
    expect(res.body.status).toBe('ready');
    expect(Object.fromEntries(Object.entries(res.body.checks as Record<string, { ok: boolean }>).map(([k, c]) => [k, c.ok]))).toEqual({
      database: true, migrations: true, disk: true, signatureWorkers: true, walCheckpoints: true,
    });
    expect(res.body.checks.migrations.detail).toBe(`at migration ${latestMigration()}`);
  });

  it('when the free-space floor is above the free space, then it answers 503 naming the disk', async () => {
    const x = (h = await startHarness({ config: { ready: { minFreeDiskMb: 100_000_000 } } }));
    const res = await x.api.get('/readyz').expect(503);
    expect(res.body.error.code).toBe('not_ready');
    expect(res.body.error.details.failing).toEqual(['disk']);
    expect(res.body.error.message).toMatch(/disk \(\d+ MB free in .*; the floor is 100000000 MB \(ready\.minFreeDiskMb\)\)/);
    // /healthz still answers: the process is alive, only not ready.
    await x.api.get('/healthz').expect(200);
  });

  it('when the free space falls below the floor and comes back, then it goes ready, 503 naming the disk, and ready again', async () => {
    const x = (h = await startHarness({ config: { ready: { minFreeDiskMb: 500 } } }));
    // The disk as the collector reads it, fed by the test: 4 KiB blocks, `freeMb` of them free.
    let freeMb = 2000;
    const statfs = () => ({ bsize: 4096, bavail: (freeMb * 1024 * 1024) / 4096 });
    x.services.readiness = new Readiness(x.services.db, x.config.dataDir, x.config.ready.minFreeDiskMb, x.services.walCheckpoints, { statfs });

    expect((await x.api.get('/readyz').expect(200)).body.checks.disk.detail).toBe(`2000 MB free in ${x.config.dataDir}; the floor is 500 MB (ready.minFreeDiskMb)`);
    freeMb = 499;
    const low = await x.api.get('/readyz').expect(503);
    expect(low.body.error.details.failing).toEqual(['disk']);
    expect(low.body.error.details.checks.disk.detail).toBe(`499 MB free in ${x.config.dataDir}; the floor is 500 MB (ready.minFreeDiskMb)`);
    freeMb = 500;
    expect((await x.api.get('/readyz').expect(200)).body.status).toBe('ready');
  });

  it('when the free space cannot be read, then it is not ready and says why', async () => {
    const x = (h = await startHarness());
    const statfs = () => {
      throw Object.assign(new Error('EIO: i/o error, statfs'), { code: 'EIO' });
    };
    x.services.readiness = new Readiness(x.services.db, x.config.dataDir, x.config.ready.minFreeDiskMb, x.services.walCheckpoints, { statfs });
    const res = await x.api.get('/readyz').expect(503);
    expect(res.body.error.details.failing).toEqual(['disk']);
    expect(res.body.error.details.checks.disk.detail).toBe(`cannot read the free space of ${x.config.dataDir}: EIO: i/o error, statfs`);
  });

  it('when the store is closed, then it answers 503 naming the database', async () => {
    const x = (h = await startHarness());
    // The readiness check alone, then through HTTP, where who asks is looked up in the store first.
    x.services.db.close();
    const state = x.services.readiness.check();
    expect(state.ready).toBe(false);
    expect(state.checks.database).toEqual({ ok: false, detail: 'the database is closed' });
    const res = await x.api.get('/readyz').expect(503);
    expect(res.body.error.message).toMatch(/the database is closed/);
    expect(res.body.error.details.database).toBe('closed');
  });

  it('when another connection holds the write lock, then the database is not writable and it says so', async () => {
    const x = (h = await startHarness());
    const Database = (await import('better-sqlite3')).default;
    const other = new Database(x.services.db.name);
    other.exec('BEGIN IMMEDIATE');
    try {
      const res = await x.api.get('/readyz').expect(503);
      expect(res.body.error.details.failing).toEqual(['database']);
      expect(res.body.error.details.checks.database.detail).toMatch(/^not writable: database is locked/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await x.api.get('/readyz').expect(200);
    // The store's own wait for a lock is what it was.
    expect(x.services.db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('when the schema is behind this version, then it answers 503 naming the migrations', async () => {
    const x = (h = await startHarness());
    x.services.db.pragma(`user_version = ${latestMigration() - 1}`);
    const res = await x.api.get('/readyz').expect(503);
    expect(res.body.error.details.failing).toEqual(['migrations']);
    expect(res.body.error.details.checks.migrations.detail).toBe(`the database is at migration ${latestMigration() - 1}; this version needs ${latestMigration()}`);
  });

  it('when the signature workers are gone, then it answers 503 naming them', async () => {
    const x = (h = await startHarness({ verifier: 'pooled' }));
    const ok = await x.api.get('/readyz').expect(200);
    expect(ok.body.checks.signatureWorkers.detail).toBe('alive');
    await x.verifier.close();
    const res = await x.api.get('/readyz').expect(503);
    expect(res.body.error.details.failing).toEqual(['signatureWorkers']);
  });
});
