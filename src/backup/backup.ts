import { Worker } from 'node:worker_threads';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Db } from '../store/open.js';
import type { OnProgress } from '../shared/progress.js';
import { AppError, conflict } from '../shared/errors.js';
import { fileProblem } from '../shared/files.js';
import { builtWorker } from '../shared/worker.js';
import type { BackupManifest } from './format.js';
import { copyStore, sealCopy, type SealInput } from './seal.js';

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
 * An online, consistent copy of the store while devices keep reporting: one snapshot of the WAL,
 * copied and checked on a worker thread (seal.ts) while the main thread answers devices. The
 * file is written beside its final name (mode 0600 from the start), checked, and renamed.
 */
export async function makeBackup(src: BackupSource, req: BackupRequest): Promise<BackupResult> {
  const started = Date.now();
  const file = req.file;
  if (existsSync(file)) throw conflict('file_exists', `${file} exists: a backup never overwrites a file; name another or remove it`, { file });
  const partial = join(dirname(file), `.${basename(file)}.partial`);
  try {
    // A folder named for the first time (backup.dir before its first run, a pre-upgrade copy)
    // is made private: a backup with keys holds the collector's identity.
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(partial, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw conflict('backup_running', `${partial} exists: another backup to ${file} is being written (or one was cut off: remove the partial file)`, { file });
    }
    throw fileProblem(e, 'backup folder') ?? e;
  }
  let keep = false;
  try {
    const keys = req.withKeys ? keyFiles(src.dataDir) : [];
    const createdAt = new Date(src.now()).toISOString();
    // Progress is the copy's size against the store's (the copy is compact, so it ends below).
    const total = statSync(src.db.name).size;
    const tick = setInterval(() => req.onProgress?.({ phase: 'copy', done: Math.min(total, statSync(partial, { throwIfNoEntry: false })?.size ?? 0), total, unit: 'bytes' }), 250);
    let manifest: BackupManifest;
    try {
      manifest = await copyAndSeal(src.db.name, {
        file: partial, version: src.version, collectorId: src.collectorId, createdAt, floorMs: src.floorMs(), withKeys: req.withKeys, keys, reason: req.reason,
      });
    } finally {
      clearInterval(tick);
    }
    req.onProgress?.({ phase: 'copy', done: total, total, unit: 'bytes' });
    const pages = Math.ceil(statSync(partial).size / 4096);
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

/**
 * The copy and its sealing on a worker thread where one can run (the built collector), else
 * inline (the TypeScript sources in tests).
 */
function copyAndSeal(source: string, seal: SealInput): Promise<BackupManifest> {
  const worker = builtWorker(import.meta.url, './seal-worker.js');
  if (!worker) {
    copyStore(source, seal.file);
    return Promise.resolve(sealCopy(seal));
  }
  return new Promise((resolve, reject) => {
    const w = new Worker(worker, { workerData: { source, seal } });
    w.once('message', (m: { ok: boolean; manifest?: BackupManifest; error?: string; code?: string }) =>
      m.ok ? resolve(m.manifest!) : reject(new AppError(500, m.code ?? 'backup_failed', m.error ?? 'the backup could not be made')),
    );
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`the backup worker stopped with code ${code}`)));
  });
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
