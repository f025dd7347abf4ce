import { Worker } from 'node:worker_threads';
import type { Db } from '../store/open.js';
import type { Manifest } from '../exchange/manifest.js';
import { BundleError } from '../exchange/read.js';
import { builtWorker } from '../shared/worker.js';
import { readReportBatches, type ReportBatch, type ReportCheck, type ReportsRead } from './report-batches.js';

export interface ReportsCounted extends ReportsRead {
  /** Rows inserted or replaced (a report already counted with as many measurements is neither). */
  merged: number;
  /** Rows inserted: reports the upstream had not counted before. */
  fresh: number;
}

/** Many rows a statement: one call into SQLite for 32 reports costs far less than 32 calls. */
const ROWS = 32;

/**
 * Counts a verified usage bundle's reports, each once per account, UDI and report id, a grown
 * copy replacing the earlier one (the upsert's WHERE), all in one transaction: a bad line
 * anywhere, or a file changed since it was verified, rolls back every report. Nothing else
 * uses this connection meanwhile: the upstream runs as a batch command.
 */
export async function countReports(
  db: Db,
  file: string,
  manifest: Manifest,
  keys: { account: number; collector: number; now: number },
  check: ReportCheck,
  /** Told the report lines read so far after each batch is written. */
  onRead?: (read: number) => void,
): Promise<ReportsCounted> {
  const upsertOf = (rows: number) =>
    db.prepare(
      `INSERT INTO reports (account, udi, report_id, measurements, tags, body, collector, received_at)
       VALUES ${Array(rows).fill(`(${keys.account}, ?, ?, ?, ?, ?, ${keys.collector}, ${keys.now})`).join(', ')}
       ON CONFLICT (account, udi, report_id) DO UPDATE SET
         measurements = excluded.measurements, tags = excluded.tags, body = excluded.body,
         collector = excluded.collector, received_at = excluded.received_at
       WHERE excluded.measurements > reports.measurements`,
    );
  const upsertMany = upsertOf(ROWS);
  const upsertOne = upsertOf(1);
  let merged = 0;
  const write = (b: ReportBatch) => {
    const f = b.fields;
    const n = b.measurements.length;
    const args: unknown[] = new Array(5 * ROWS);
    let i = 0;
    for (; i + ROWS <= n; i += ROWS) {
      for (let j = 0; j < ROWS; j++) {
        const k = 4 * (i + j);
        args[5 * j] = f[k];
        args[5 * j + 1] = f[k + 1];
        args[5 * j + 2] = b.measurements[i + j];
        args[5 * j + 3] = f[k + 2];
        args[5 * j + 4] = f[k + 3];
      }
      merged += upsertMany.run(args).changes;
    }
    for (; i < n; i++) merged += upsertOne.run(f[4 * i], f[4 * i + 1], b.measurements[i], f[4 * i + 2], f[4 * i + 3]).changes;
    onRead?.(b.read);
  };
  db.exec('BEGIN');
  try {
    // Rows keep arrival order and an update keeps its row: the new rows are those above the old top.
    const top = (db.prepare('SELECT coalesce(max(id), 0) AS n FROM reports').get() as { n: number }).n;
    const read = await readReports(file, manifest, check, write);
    const fresh = (db.prepare('SELECT count(*) AS n FROM reports WHERE id > ?').get(top) as { n: number }).n;
    db.exec('COMMIT');
    return { ...read, merged, fresh };
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/**
 * The reports payload, parsed and checked on a worker thread while this one writes each batch
 * it hands over (about a third faster on two cores), or inline where no worker can run.
 */
function readReports(file: string, m: Manifest, check: ReportCheck, write: (b: ReportBatch) => void): Promise<ReportsRead> {
  const worker = builtWorker(import.meta.url, './report-reader-worker.js');
  if (!worker) return readReportBatches(file, m, check, write);
  return new Promise((resolve, reject) => {
    const w = new Worker(worker, { workerData: { file, manifest: m, check } });
    const fail = (e: unknown) => {
      void w.terminate();
      reject(e);
    };
    w.on('message', (msg: { type: 'batch'; batch: ReportBatch } | { type: 'done'; result: ReportsRead } | { type: 'error'; code: string | null; message: string }) => {
      try {
        if (msg.type === 'batch') {
          write(msg.batch);
          w.postMessage(1); // a credit: the worker may send another batch
        } else if (msg.type === 'done') {
          resolve(msg.result);
          void w.terminate();
        } else fail(msg.code ? new BundleError(msg.code, msg.message) : new Error(msg.message));
      } catch (e) {
        fail(e);
      }
    });
    w.on('error', fail);
    w.on('exit', (code) => code !== 0 && reject(new Error(`the report reader stopped with code ${code}`)));
  });
}

