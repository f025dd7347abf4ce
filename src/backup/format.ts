import Database from 'better-sqlite3';
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { PEER_ID } from '../exchange/manifest.js';

/**
 * A backup is itself a SQLite database: the store's pages as SQLite's backup API copied them,
 * plus two tables of its own. One file, checked by SQLite's own integrity check, readable with
 * any SQLite tool; no archive format to trust.
 */
export const BACKUP_FORMAT = 'outpost-backup';
export const BACKUP_FORMAT_VERSION = 1;
/** The manifest: one row, its JSON. */
export const MANIFEST_TABLE = 'outpost_backup';
/** The key files, with --with-keys only. */
export const FILES_TABLE = 'outpost_backup_files';

export const backupManifestSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  formatVersion: z.literal(BACKUP_FORMAT_VERSION, { error: `an unknown backup format version (this Outpost reads version ${BACKUP_FORMAT_VERSION})` }),
  /** Outpost's version that made it. */
  version: z.string(),
  collectorId: z.string().regex(PEER_ID),
  /** The store's migration (SQLite user_version) at the time of the backup. */
  schemaVersion: z.number().int().nonnegative(),
  createdAt: z.iso.datetime(),
  /** The trusted-time floor at the time of the backup (ms). */
  timeFloorMs: z.number().int().nonnegative(),
  /** The audit trail's head in the copy: what a restore rewinds to. */
  eventHead: z.strictObject({ id: z.number().int().nonnegative(), hash: z.string() }),
  withKeys: z.boolean(),
  /** The key files it holds (names under data/keys), empty without keys. */
  keys: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/)),
  /** Why it was made: an operator's command, the schedule, or the copy an upgrade takes first. */
  reason: z.enum(['manual', 'schedule', 'pre-restore', 'pre-migration']),
});

export type BackupManifest = z.infer<typeof backupManifestSchema>;

export interface BackupContents {
  manifest: BackupManifest;
  /** Key files by name, with their modes (only with keys). */
  keys: Map<string, { mode: number; content: Buffer }>;
}

/**
 * Opens a backup read-only and checks it whole before anything is trusted: SQLite's
 * integrity check over every page, then the manifest. Throws an AppError naming the fault.
 */
export function readBackup(file: string, opts: { latestSchema: number; full?: boolean }): BackupContents {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new AppError(400, 'backup_unreadable', `${file} cannot be opened as a backup: ${(e as Error).message}`);
  }
  try {
    let problems: string[];
    try {
      problems = (db.pragma(opts.full === false ? 'quick_check' : 'integrity_check') as { integrity_check?: string; quick_check?: string }[]).map((r) => String(r.integrity_check ?? r.quick_check));
    } catch (e) {
      throw new AppError(400, 'backup_corrupt', `${file} is not a sound SQLite database: ${(e as Error).message}`);
    }
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new AppError(400, 'backup_corrupt', `${file} fails SQLite's integrity check: ${problems.slice(0, 3).join('; ')}`);
    }
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    if (!has.get(MANIFEST_TABLE)) throw new AppError(400, 'not_a_backup', `${file} is a SQLite database but not an Outpost backup (it has no ${MANIFEST_TABLE} table)`);
    const raw = db.prepare(`SELECT manifest FROM ${MANIFEST_TABLE}`).pluck().get() as string | undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(String(raw));
    } catch {
      throw new AppError(400, 'not_a_backup', `${file}: its manifest is not JSON`);
    }
    const m = backupManifestSchema.safeParse(parsed);
    if (!m.success) {
      const i = m.error.issues[0]!;
      throw new AppError(400, 'not_a_backup', `${file}: its manifest is not understood: ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    const manifest = m.data;
    const userVersion = db.pragma('user_version', { simple: true }) as number;
    if (userVersion !== manifest.schemaVersion) {
      throw new AppError(400, 'backup_corrupt', `${file}: its manifest says migration ${manifest.schemaVersion}, the database is at ${userVersion}`);
    }
    if (manifest.schemaVersion > opts.latestSchema) {
      throw new AppError(409, 'backup_too_new', `${file} was made by Outpost ${manifest.version} at migration ${manifest.schemaVersion}; this Outpost knows migrations up to ${opts.latestSchema}: restore it with that version or a later one`);
    }
    const keys = new Map<string, { mode: number; content: Buffer }>();
    if (has.get(FILES_TABLE)) {
      for (const r of db.prepare(`SELECT name, mode, content FROM ${FILES_TABLE}`).all() as { name: string; mode: number; content: Buffer }[]) {
        if (!/^[A-Za-z0-9._-]+$/.test(r.name) || r.name.startsWith('.')) throw new AppError(400, 'not_a_backup', `${file}: it holds a key file with an unsafe name`);
        keys.set(r.name, { mode: r.mode & 0o600, content: r.content });
      }
    }
    return { manifest, keys };
  } finally {
    db.close();
  }
}
