import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate, refuseNewer, refuseNoRoomForCopy, type FreeBytes } from './migrate.js';

export type Db = Database.Database;

export class StoreLockedError extends Error {
  constructor(file: string) {
    super(`the database ${file} is in use by another Outpost process`);
  }
}

/**
 * One process owns the database at a time (DESIGN principle 10). The claim is SQLite's own
 * exclusive lock on a small companion file, held for as long as the store is open and
 * released by the kernel if the process dies; the database itself stays in normal locking
 * mode, so that a worker thread of the owning process can read a consistent WAL snapshot
 * (an export) while the main thread keeps writing.
 */
export function claimStore(file: string): Db {
  const lock = new Database(`${file}.lock`, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (e) {
    lock.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreLockedError(file);
    throw e;
  }
  return lock;
}

/** The pragmas every connection to the store uses, the owner's and its readers' alike. */
export function applyPragmas(db: Db): void {
  // WAL: readers never block the writer, and a commit is one sequential append.
  db.pragma('journal_mode = WAL');
  // FULL: the WAL is fsynced at every commit, so a 2xx survives a power cut, not only a crash.
  db.pragma('synchronous = FULL');
  // Referential integrity is checked by SQLite, not hoped for.
  db.pragma('foreign_keys = ON');
  // Temp b-trees for big sorts stay in memory; the machine has plenty, the disk is slower.
  db.pragma('temp_store = MEMORY');
  // About 16 MiB of page cache: the hot pages of 100k devices fit, and the server stays lean.
  db.pragma('cache_size = -16384');
  // A writer that finds the database briefly busy (a reader's checkpoint) waits, not fails.
  db.pragma('busy_timeout = 5000');
  // A WAL that grew while a long reader (a backup, an export) held its frames is cut back to
  // 64 MiB when it next restarts, rather than keeping its peak size on disk for ever.
  db.pragma('journal_size_limit = 67108864');
}

export interface StoreOptions {
  /** The numbered .sql files to apply; the collector's by default. */
  migrationsDir?: string;
  /** Page size for a store created now (an existing store keeps its own). */
  pageSize?: number;
  /** Told where the copy taken before migrating an existing store went (stderr by default). */
  log?: (message: string) => void;
  /** Makes that copy restorable (see migrate). */
  sealCopy?: (file: string) => void;
  /** Reads the free space where that copy goes (statfs by default). */
  freeBytes?: FreeBytes;
}

/** Opens the store, claiming it for this process. */
export function openStore(file: string, opts: StoreOptions = {}): Db {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const lock = claimStore(file);
  let db: Db | undefined;
  try {
    const fresh = !existsSync(file);
    db = new Database(file);
    // Before any pragma: WAL mode would rewrite the header of a file that is not ours to change.
    refuseNewer(db, opts.migrationsDir);
    // Also before any pragma: a start refused for want of room leaves the files as they were.
    refuseNoRoomForCopy(db, opts.migrationsDir, { freeBytes: opts.freeBytes });
    // Only an empty database takes a page size, and only before WAL is turned on.
    if (fresh && opts.pageSize) db.pragma(`page_size = ${Number(opts.pageSize)}`);
    applyPragmas(db);
  } catch (e) {
    db?.close();
    lock.close();
    throw e;
  }
  // The database holds token hashes and device keys: readable by the service user only.
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}.lock`]) if (existsSync(f)) chmodSync(f, 0o600);
  try {
    migrate(db, opts.migrationsDir, { ...(opts.log ? { log: opts.log } : {}), ...(opts.sealCopy ? { sealCopy: opts.sealCopy } : {}), ...(opts.freeBytes ? { freeBytes: opts.freeBytes } : {}) });
  } catch (e) {
    // A start that cannot migrate gives the store back: the operator's next command must find it free.
    db.close();
    lock.close();
    throw e;
  }
  const store = db;
  // Closing the store gives up the claim too.
  const close = store.close.bind(store);
  store.close = () => {
    close();
    lock.close();
    return store;
  };
  return store;
}

/**
 * A read-only connection for a worker thread of the process that owns the store. Its page
 * cache is small (2 MiB): its reads are long sequential scans, which a cache does not speed
 * up, and it runs inside the server, whose memory it shares.
 */
export function openReader(file: string): Db {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('cache_size = -2048');
  db.pragma('busy_timeout = 5000');
  return db;
}
