import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/usage/group-commit.js';
import { WalSync } from '../../src/store/wal-sync.js';
import { applyPragmas } from '../../src/store/open.js';

let dir: string;
let db: Database.Database;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-commit-'));
  db = new Database(join(dir, 'store.db'));
  applyPragmas(db);
  db.exec('CREATE TABLE t (v INTEGER)');
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A WAL sync the test finishes by hand. */
function manualSync() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const sync = () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject }));
  return { calls, sync };
}
const settled = async (p: Promise<unknown>) => {
  let state = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setImmediate(r));
  return state;
};

describe('group commit with the WAL synced off the main thread', () => {
  it('when a batch commits, then no reply is given before its WAL sync completes, and other writes keep synchronous=FULL', async () => {
    const wal = manualSync();
    const commits = new GroupCommit(db, () => {}, wal.sync);
    const a = commits.submit(() => db.prepare('INSERT INTO t VALUES (1)').run());
    const b = commits.submit(() => db.prepare('INSERT INTO t VALUES (2)').run());
    commits.flush();
    expect(wal.calls).toHaveLength(1); // one sync for the whole group
    const reader = new Database(join(dir, 'store.db'), { readonly: true });
    expect((reader.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(2); // committed...
    reader.close();
    expect(await settled(a)).toBe('pending'); // ...but not answered
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL again for everything else
    wal.calls[0]!.resolve();
    await expect(a).resolves.toBeTruthy();
    await expect(b).resolves.toBeTruthy();
  });

  it('when the WAL sync fails, then every job of the group is refused with storage_unavailable (503)', async () => {
    const wal = manualSync();
    const commits = new GroupCommit(db, () => {}, wal.sync);
    const a = commits.submit(() => db.prepare('INSERT INTO t VALUES (1)').run());
    commits.flush();
    wal.calls[0]!.reject(Object.assign(new Error('I/O error'), { code: 'EIO' }));
    await expect(a).rejects.toMatchObject({ status: 503, code: 'storage_unavailable', message: expect.stringContaining('EIO') });
  });

  it('when the real WAL is synced, then the reply follows, and closing waits for syncs in flight', async () => {
    const wal = new WalSync(join(dir, 'store.db-wal'));
    const commits = new GroupCommit(db, () => {}, () => wal.sync());
    const a = commits.submit(() => db.prepare('INSERT INTO t VALUES (1)').run());
    commits.flush();
    await wal.close();
    expect(await settled(a)).toBe('resolved');
  });

  it('when the WAL file cannot even be opened, then the group is refused, later jobs are refused as storage_failed, and nothing throws', async () => {
    const wal = new WalSync(join(dir, 'missing', 'store.db-wal'));
    const commits = new GroupCommit(db, () => {}, () => wal.sync());
    const a = commits.submit(() => db.prepare('INSERT INTO t VALUES (1)').run());
    commits.flush();
    await expect(a).rejects.toMatchObject({ status: 503, code: 'storage_unavailable', message: expect.stringContaining('ENOENT') });
    const b = commits.submit(() => 2);
    commits.flush();
    await expect(b).rejects.toMatchObject({ status: 503, code: 'storage_failed' });
  });
});
