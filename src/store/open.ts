import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate } from './migrate.js';

export type Db = Database.Database;

export class StoreLockedError extends Error {
  constructor(file: string) {
    super(`the database ${file} is in use by another Outpost process`);
  }
}

/**
 * Opens the store. One process owns the database at a time (DESIGN principle 10), so the
 * connection takes SQLite's exclusive lock and keeps it until it closes; a second process
 * gets StoreLockedError instead of racing the first.
 */
export function openStore(file: string, migrationsDir?: string): Db {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file, { timeout: 0 });
  try {
    // WAL: readers never block the writer, and a commit is one sequential append.
    db.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, so a 2xx survives a power cut, not only a crash.
    db.pragma('synchronous = FULL');
    // Referential integrity is checked by SQLite, not hoped for.
    db.pragma('foreign_keys = ON');
    // Exclusive: the lock is taken at the first transaction and held; no shared-memory index.
    db.pragma('locking_mode = EXCLUSIVE');
    // Temp b-trees for big sorts stay in memory; the machine has plenty, the disk is slower.
    db.pragma('temp_store = MEMORY');
    // About 16 MiB of page cache: the hot pages of 100k devices fit, and the server stays lean.
    db.pragma('cache_size = -16384');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreLockedError(file);
    throw e;
  }
  // The database holds token hashes and device keys: readable by the service user only.
  for (const f of [file, `${file}-wal`]) if (existsSync(f)) chmodSync(f, 0o600);
  migrate(db, migrationsDir);
  return db;
}
