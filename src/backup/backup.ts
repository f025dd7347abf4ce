import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Db } from '../store/open.js';
import type { OnProgress } from '../shared/progress.js';
import { AppError, conflict } from '../shared/errors.js';
import { fileProblem } from '../shared/files.js';
import { GENESIS } from '../events/service.js';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, FILES_TABLE, MANIFEST_TABLE, type BackupManifest } from './format.js';

export interface BackupRequest {
  file: string;
  withKeys: boolean;
  reason: BackupManifest['reason'];
  onProgress?: OnProgress;
}

export interface BackupResult {
  file: string;
  bytes: number;
  pages: number;
  createdAt: string;
  withKeys: boolean;
  keys: string[];
  schemaVersion: number;
  eventHead: { id: number; hash: string };
  durationMs: number;
}

export interface BackupSource {
  db: Db;
  dataDir: string;
  collectorId: string;
  version: string;
  now: () => number;
  /** The trusted-time floor now: the copy's may be a minute older. */
  floorMs: () => number;
}

/**
 * Pages copied per step. SQLite's backup API holds the store's read lock only during a step and
 * better-sqlite3 lets the event loop run between steps, so a step is the longest a backup can
 * hold up a device's request: 1 MiB of 4 KiB pages copies in about a millisecond.
 */
const PAGES_PER_STEP = 256;

/**
 * An online, consistent copy of the store while devices keep reporting. The copy is taken through
 * the collector's own connection: SQLite then folds the writes made during the backup into the
 * copy, where a write from another connection would make it start over (and never end under load).
 * The file is written beside its final name (mode 0600 from the start), checked, and renamed.
 */
export async function makeBackup(src: BackupSource, req: BackupRequest): Promise<BackupResult> {
  const started = Date.now();
  const file = req.file;
  if (existsSync(file)) throw conflict('file_exists', `${file} exists: a backup never overwrites a file; name another or remove it`, { file });
  const partial = join(dirname(file), `.${basename(file)}.partial`);
  try {
    closeSync(openSync(partial, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw conflict('backup_running', `${partial} exists: another backup to ${file} is being written (or one was cut off: remove the partial file)`, { file });
    }
    throw fileProblem(e, 'backup folder') ?? e;
  }
  let keep = false;
  try {
    let pages = 0;
    await src.db.backup(partial, {
      progress: ({ totalPages, remainingPages }) => {
        pages = totalPages;
        req.onProgress?.({ phase: 'copy', done: totalPages - remainingPages, total: totalPages });
        return PAGES_PER_STEP;
      },
    });
    const keys = req.withKeys ? keyFiles(src.dataDir) : [];
    const createdAt = new Date(src.now()).toISOString();
    const copy = new Database(partial);
    let manifest: BackupManifest;
    try {
      // The copy stands alone: no WAL beside it.
      copy.pragma('journal_mode = DELETE');
      const head = (copy.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined) ?? { id: 0, hash: GENESIS };
      const floorInCopy = Number((copy.prepare("SELECT value FROM meta WHERE key = 'time_floor'").pluck().get() as string | undefined) ?? 0);
      manifest = {
        format: BACKUP_FORMAT, formatVersion: BACKUP_FORMAT_VERSION, version: src.version, collectorId: src.collectorId,
        schemaVersion: copy.pragma('user_version', { simple: true }) as number, createdAt,
        timeFloorMs: Math.max(floorInCopy, Math.floor(src.floorMs())), eventHead: head, withKeys: req.withKeys,
        keys: keys.map((k) => k.name), reason: req.reason,
      };
      copy.transaction(() => {
        copy.exec(`CREATE TABLE ${MANIFEST_TABLE} (manifest TEXT NOT NULL)`);
        copy.prepare(`INSERT INTO ${MANIFEST_TABLE} (manifest) VALUES (?)`).run(JSON.stringify(manifest));
        if (req.withKeys) {
          copy.exec(`CREATE TABLE ${FILES_TABLE} (name TEXT PRIMARY KEY, mode INTEGER NOT NULL, content BLOB NOT NULL)`);
          const put = copy.prepare(`INSERT INTO ${FILES_TABLE} (name, mode, content) VALUES (?, ?, ?)`);
          for (const k of keys) put.run(k.name, k.mode, k.content);
        }
      })();
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new AppError(500, 'backup_failed', `the copy failed SQLite's check (${String(check)}); the store itself was not changed`);
    } finally {
      copy.close();
    }
    const fd = openSync(partial, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (existsSync(file)) throw conflict('file_exists', `${file} appeared while the backup was made: it was not overwritten`, { file });
    renameSync(partial, file);
    syncDir(dirname(file));
    keep = true;
    return {
      file, bytes: statSync(file).size, pages, createdAt, withKeys: req.withKeys, keys: manifest.keys,
      schemaVersion: manifest.schemaVersion, eventHead: manifest.eventHead, durationMs: Date.now() - started,
    };
  } catch (e) {
    throw fileProblem(e, 'backup file') ?? e;
  } finally {
    if (!keep) rmSync(partial, { force: true });
  }
}

/** Every regular file of data/keys: the identity, the secret key, retired keys, the hostname key. */
function keyFiles(dataDir: string): { name: string; mode: number; content: Buffer }[] {
  const dir = join(dataDir, 'keys');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && /^[A-Za-z0-9._-]+$/.test(d.name) && !d.name.startsWith('.') && !d.name.endsWith('.new'))
    .map((d) => ({ name: d.name, mode: statSync(join(dir, d.name)).mode & 0o777, content: readFileSync(join(dir, d.name)) }));
}

/** A rename is durable once its folder is synced. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
