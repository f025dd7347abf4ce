import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * Moves the WAL's frames into the database file on a thread of its own (see wal-checkpointer.ts).
 * PASSIVE never waits for a reader or the writer: it copies what it can now and tries again at
 * the next tick. The copy and its fsync of the database file are the slow part, and they happen
 * here, not on the thread that answers devices.
 */
const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { fileMustExist: true });
// Read from the database file (after a PASSIVE copy), never written by this connection.
db.pragma('busy_timeout = 0');
// FULL, as the owner: the database file is fsynced before the WAL may be reset over its frames.
db.pragma('synchronous = FULL');

function checkpoint(): void {
  const started = performance.now();
  const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  parentPort!.postMessage({ kind: 'checkpoint', at: Date.now(), ms: performance.now() - started, log: row!.log, checkpointed: row!.checkpointed });
}

const timer = setInterval(() => {
  try {
    checkpoint();
  } catch (e) {
    // A busy or locked database is the next tick's to try again; anything else ends the worker,
    // and the owner decides (restart, or checkpoints of its own).
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return;
    throw e;
  }
}, intervalMs);

parentPort!.on('message', (m: { kind: string }) => {
  if (m.kind !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
parentPort!.postMessage({ kind: 'ready' });
