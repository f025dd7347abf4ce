import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { copyMargin, latestVersion, NoRoomForCopyError } from '../../src/store/migrate.js';
import { openUpstreamStore, upstreamMigrations } from '../../src/upstream/store.js';
import { tempDir } from '../helpers/temp.js';
import { collectorAt001, upstreamAt001 } from '../upgrade/fixtures-001.js';

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const size = (file: string) => (existsSync(file) ? statSync(file).size : 0);
const version = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

/**
 * An upgrade copies the store before migrating it; where the file system has less room than
 * that copy needs, the start is refused with the figures, and the store is left as it was.
 */
describe.each([
  { store: 'collector', make: (dir: string) => collectorAt001(dir).file, open: (dir: string, freeBytes?: (f: string) => number) => openStore(join(dir, 'outpost.db'), { freeBytes, log: () => {} }), latest: () => latestVersion() },
  { store: 'upstream', make: (dir: string) => upstreamAt001(dir).file, open: (dir: string, freeBytes?: (f: string) => number) => openUpstreamStore(dir, { freeBytes }), latest: () => latestVersion(upstreamMigrations) },
])('the $store store at migration 001, opened by this version', ({ make, open, latest }) => {
  it('is refused with the bytes needed and free and the folder, and nothing changes, while the copy does not fit; it upgrades once it does', () => {
    const dir = join(tempDir('room'), 'data');
    const file = make(dir);
    const before = digest(file);
    const needed = size(file) + size(`${file}-wal`);
    const enough = needed + copyMargin(needed);
    const asked: string[] = [];
    const short = (f: string) => (asked.push(f), enough - 1);

    let refusal: unknown;
    try {
      open(dir, short).close();
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(NoRoomForCopyError);
    const folder = join(dir, 'backups');
    expect((refusal as Error).message).toBe(
      `the database ${file} must be copied to ${folder} before it is migrated, which needs ${enough} bytes free there ` +
        `(its size plus a margin), but only ${enough - 1} bytes are free: nothing was changed; free some space on that file system ` +
        '(old pre-migration copies and backups are kept in that folder), then start again',
    );
    // The copy's folder does not exist yet: the room is read on the file system that will hold it.
    expect(asked).toEqual([dir]);
    expect(digest(file)).toBe(before);
    expect(existsSync(folder)).toBe(false);
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(version(file)).toBe(1);

    // Exactly enough: the store is free again, copied, and upgraded.
    open(dir, () => enough).close();
    expect(version(file)).toBe(latest());
    expect(readdirSync(folder)).toEqual([expect.stringMatching(/^pre-migration-v1-to-v\d+-.*\.db$/)]);
  });
});
