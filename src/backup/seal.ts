import Database from 'better-sqlite3';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { AppError } from '../shared/errors.js';
import { openReader } from '../store/open.js';
import { GENESIS } from '../events/service.js';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, FILES_TABLE, MANIFEST_TABLE, type BackupManifest } from './format.js';

export interface SealInput {
  file: string;
  version: string;
  collectorId: string;
  createdAt: string;
  /** The trusted-time floor now (the copy's own may be a minute older). */
  floorMs: number;
  withKeys: boolean;
  keys: { name: string; mode: number; content: Uint8Array }[];
  reason: BackupManifest['reason'];
}

/**
 * Copies the store into `file` (empty, mode 0600) from a read-only connection of its own:
 * VACUUM INTO reads one consistent snapshot of the WAL while the collector's connection keeps
 * writing, and writes a compact copy that needs no WAL. SQLite's backup API, stepped on the
 * collector's own connection, ran on the main thread and held device answers up (p99 ×9 in
 * bench/backup.mjs); from another connection it starts over at every write.
 */
export function copyStore(source: string, file: string): void {
  const db = openReader(source);
  try {
    db.prepare('VACUUM INTO ?').run(file);
  } finally {
    db.close();
  }
}

/**
 * Makes a fresh copy a backup: a file that stands alone (no WAL), its manifest and keys added,
 * SQLite's quick_check passed, and synced to disk. It reads every page of the copy, hundreds of
 * milliseconds for a large store, so the collector runs it on a worker thread (seal-worker.ts):
 * on its main thread it held devices' answers for as long.
 */
export function sealCopy(s: SealInput): BackupManifest {
  const copy = new Database(s.file);
  let manifest: BackupManifest;
  try {
    copy.pragma('journal_mode = DELETE');
    const head = (copy.prepare('SELECT id, hash FROM events ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined) ?? { id: 0, hash: GENESIS };
    const floorInCopy = Number((copy.prepare("SELECT value FROM meta WHERE key = 'time_floor'").pluck().get() as string | undefined) ?? 0);
    manifest = {
      format: BACKUP_FORMAT, formatVersion: BACKUP_FORMAT_VERSION, version: s.version, collectorId: s.collectorId,
      schemaVersion: copy.pragma('user_version', { simple: true }) as number, createdAt: s.createdAt,
      timeFloorMs: Math.max(floorInCopy, Math.floor(s.floorMs)), eventHead: head, withKeys: s.withKeys,
      keys: s.keys.map((k) => k.name), reason: s.reason,
    };
    copy.transaction(() => {
      copy.exec(`CREATE TABLE ${MANIFEST_TABLE} (manifest TEXT NOT NULL)`);
      copy.prepare(`INSERT INTO ${MANIFEST_TABLE} (manifest) VALUES (?)`).run(JSON.stringify(manifest));
      if (s.withKeys) {
        copy.exec(`CREATE TABLE ${FILES_TABLE} (name TEXT PRIMARY KEY, mode INTEGER NOT NULL, content BLOB NOT NULL)`);
        const put = copy.prepare(`INSERT INTO ${FILES_TABLE} (name, mode, content) VALUES (?, ?, ?)`);
        for (const k of s.keys) put.run(k.name, k.mode, Buffer.from(k.content));
      }
    })();
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new AppError(500, 'backup_failed', `the copy failed SQLite's check (${String(check)}); the store itself was not changed`);
  } finally {
    copy.close();
  }
  const fd = openSync(s.file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return manifest;
}
