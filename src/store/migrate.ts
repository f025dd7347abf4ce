import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from '../config/load.js';
import type { Db } from './open.js';

export const collectorMigrations = join(packageRoot, 'src/store/migrations');

const MIGRATION_FILE = /^\d{3}_[a-z0-9_]+\.sql$/;

/** A database written by a later Outpost: its schema is unknown here, so it is not touched. */
export class DatabaseTooNewError extends Error {
  readonly code = 'database_too_new';
  constructor(readonly file: string, readonly version: number, readonly latest: number) {
    super(
      `the database ${file} is at schema version ${version}, but this Outpost knows versions up to ${latest}: ` +
        'this database was written by a newer Outpost; run that version, or restore a backup made by this one',
    );
  }
}

/** A migration that failed: its transaction was rolled back, so the database kept its version. */
export class MigrationError extends Error {
  readonly code = 'migration_failed';
  constructor(readonly file: string, readonly migration: string, readonly version: number, cause: unknown, readonly backup: string | undefined) {
    super(
      `migration ${migration} of the database ${file} failed: ${(cause as Error)?.message ?? String(cause)}; ` +
        `the database stays at schema version ${version}` +
        (backup ? ` (the copy taken before migrating is ${backup})` : ''),
      { cause },
    );
  }
}

/** Not enough free space for the copy taken before migrating: nothing was changed. */
export class NoRoomForCopyError extends Error {
  readonly code = 'no_room_for_pre_migration_copy';
  constructor(readonly file: string, readonly folder: string, readonly needed: number, readonly free: number) {
    super(
      `the database ${file} must be copied to ${folder} before it is migrated, which needs ${needed} bytes free there ` +
        `(its size plus a margin), but only ${free} bytes are free: nothing was changed; free some space on that file system ` +
        '(old pre-migration copies and backups are kept in that folder), then start again',
    );
  }
}

/** Free bytes for an unprivileged writer on the file system holding `folder`. */
export type FreeBytes = (folder: string) => number;

export const statfsFreeBytes: FreeBytes = (folder) => {
  const s = statfsSync(folder);
  return s.bavail * s.bsize;
};

/**
 * What the copy may take beyond the database's own size: VACUUM INTO writes no more than the
 * live pages, but the file system needs room for its own blocks, and a disk left at zero stops
 * the collector's next writes. A tenth of the size, and never less than 16 MiB.
 */
export const copyMargin = (size: number) => Math.max(16 * 1024 * 1024, Math.ceil(size / 10));

export interface MigrateOptions {
  /** Apply migrations up to this version only: a test builds a database as an older Outpost made it. */
  upTo?: number;
  /** Told where the copy taken before migrating an existing database went. */
  log?: (message: string) => void;
  /** When the pre-migration copy is named for (tests pin it). */
  now?: () => number;
  /** false: no copy first (a restore migrates a copy of its backup file, which is the copy). */
  copy?: boolean;
  /** Makes the copy taken before migrating restorable (the backup layer adds its manifest). */
  sealCopy?: (file: string) => void;
  /** Reads the free space where the copy goes (statfs by default; a test gives a small one). */
  freeBytes?: FreeBytes;
}

function migrationFiles(migrationsDir: string): { version: number; file: string }[] {
  return readdirSync(migrationsDir)
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 3)), file }));
}

/** The highest migration this build knows. */
export function latestVersion(migrationsDir = collectorMigrations): number {
  return migrationFiles(migrationsDir).reduce((m, f) => Math.max(m, f.version), 0);
}

/**
 * Throws DatabaseTooNewError when the database's version is past every migration this build
 * has. Reads only: called before any pragma that would write the file (WAL mode).
 */
export function refuseNewer(db: Db, migrationsDir = collectorMigrations): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  const latest = latestVersion(migrationsDir);
  if (version > latest) throw new DatabaseTooNewError(db.name, version, latest);
}

/** Where the copy of a database taken before migrating it goes: a backups/ folder beside it. */
export function preMigrationFile(dbFile: string, from: number, to: number, at: number): string {
  const stamp = new Date(at).toISOString().replace(/[:.]/g, '-');
  return join(dirname(dbFile), 'backups', `pre-migration-v${from}-to-v${to}-${stamp}.db`);
}

/**
 * A consistent copy of the database as it is, by VACUUM INTO, into a file made empty first with
 * mode 0600 (the database holds token hashes and device keys: the copy is as private).
 */
function copyBefore(db: Db, from: number, to: number, at: number): string {
  const target = preMigrationFile(db.name, from, to, at);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  closeSync(openSync(target, 'wx', 0o600));
  chmodSync(target, 0o600);
  db.prepare('VACUUM INTO ?').run(target);
  return target;
}

const onDisk = (file: string) => (existsSync(file) ? statSync(file).size : 0);

/**
 * Refuses, before anything is written, to start an upgrade whose pre-migration copy would not
 * fit: a copy that fills the disk half-way fails the start anyway, and leaves the disk full for
 * everything else. Reads only, so the store opener calls it before its first pragma.
 */
export function refuseNoRoomForCopy(db: Db, migrationsDir = collectorMigrations, opts: MigrateOptions = {}): void {
  if (!copyDue(db, migrationsDir, opts)) return;
  const folder = dirname(preMigrationFile(db.name, 0, 0, 0));
  // The folder is made only when the copy is taken: until then its parent holds the space.
  const measured = existsSync(folder) ? folder : dirname(folder);
  const needed = onDisk(db.name) + onDisk(`${db.name}-wal`);
  const withMargin = needed + copyMargin(needed);
  const free = (opts.freeBytes ?? statfsFreeBytes)(measured);
  if (free < withMargin) throw new NoRoomForCopyError(db.name, folder, withMargin, free);
}

/** Whether migrating this database now takes a copy first: an existing file database with migrations pending. */
function copyDue(db: Db, migrationsDir: string, opts: MigrateOptions): boolean {
  if (opts.copy === false || db.name === ':memory:' || db.name === '') return false;
  const current = db.pragma('user_version', { simple: true }) as number;
  return current > 0 && migrationFiles(migrationsDir).some((m) => m.version > current && (opts.upTo === undefined || m.version <= opts.upTo));
}

/**
 * Applies the numbered .sql files in src/store/migrations that this database has not seen, in
 * one transaction, recording the version in SQLite's user_version. An existing
 * database (version above 0) is copied first, so that an upgrade that goes wrong in a way no
 * transaction can undo (a migration that is wrong, not failing) can still be taken back.
 */
export function migrate(db: Db, migrationsDir = collectorMigrations, opts: MigrateOptions = {}): void {
  refuseNewer(db, migrationsDir);
  refuseNoRoomForCopy(db, migrationsDir, opts);
  const current = db.pragma('user_version', { simple: true }) as number;
  const pending = migrationFiles(migrationsDir).filter((m) => m.version > current && (opts.upTo === undefined || m.version <= opts.upTo));
  if (!pending.length) return;
  const to = pending[pending.length - 1]!.version;
  let backup: string | undefined;
  // A database being created (version 0) holds nothing worth a copy; an in-memory one has no folder.
  if (opts.copy !== false && current > 0 && db.name !== ':memory:' && db.name !== '') {
    backup = copyBefore(db, current, to, (opts.now ?? Date.now)());
    opts.sealCopy?.(backup);
    (opts.log ?? ((m) => process.stderr.write(`outpost: ${m}\n`)))(
      `the database ${db.name} is at schema version ${current}: copied it to ${backup} before migrating it to version ${to}`,
    );
  }
  // One transaction for the whole upgrade: a failure anywhere leaves the database exactly as
  // the running version's predecessor left it, never at a step in between.
  let failed = pending[0]!.file;
  try {
    db.transaction(() => {
      for (const { version, file } of pending) {
        failed = file;
        db.exec(readFileSync(join(migrationsDir, file), 'utf8'));
        db.pragma(`user_version = ${version}`);
      }
    })();
  } catch (e) {
    throw new MigrationError(db.name, failed, current, e, backup);
  }
  if (backup) prunePreMigrationCopies(backup, opts.log ?? ((m) => process.stderr.write(`outpost: ${m}\n`)));
}

/** Pre-migration copies kept: the one just taken and the two upgrades before it. */
export const KEEP_PRE_MIGRATION_COPIES = 3;

/**
 * After an upgrade that went through, the oldest pre-migration copies go: each is a whole copy
 * of the database, and a site that upgrades every month would otherwise fill its disk with them.
 * Only files named as copyBefore() names them, in the folder it writes, are ever removed.
 */
function prunePreMigrationCopies(justTaken: string, log: (m: string) => void): void {
  const dir = dirname(justTaken);
  // Newest first by the time in the name (when the copy was taken; a file's mtime changes when it is copied about).
  const copies = readdirSync(dir)
    .map((f) => ({ f, stamp: /^pre-migration-v\d+-to-v\d+-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)\.db$/.exec(f)?.[1] }))
    .filter((c): c is { f: string; stamp: string } => c.stamp !== undefined)
    .sort((a, b) => b.stamp.localeCompare(a.stamp));
  for (const { f } of copies.slice(KEEP_PRE_MIGRATION_COPIES)) {
    rmSync(join(dir, f), { force: true });
    log(`removed the pre-migration copy ${join(dir, f)}: the newest ${KEEP_PRE_MIGRATION_COPIES} are kept`);
  }
}
