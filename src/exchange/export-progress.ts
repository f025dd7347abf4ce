import type { Db } from '../store/open.js';
import type { OnProgress } from '../shared/progress.js';
import { NdjsonChunk, type PayloadSource } from './write.js';
import { PAYLOAD } from './records.js';

/**
 * The export's payloads with its reports counted as they are written, for a caller that
 * follows the export. The total is counted first, in the same snapshot, only when someone
 * follows: a scheduled export or a sync part pays nothing.
 */
export function countingReports(db: Db, payloads: PayloadSource[], onProgress: OnProgress | undefined, after = 0, max = Infinity): PayloadSource[] {
  if (!onProgress) return payloads;
  const pending = (db.prepare("SELECT count(*) AS n FROM report_pending WHERE destination = 'outpost' AND report_id > ?").get(after) as { n: number }).n;
  const total = Math.min(pending, max);
  return payloads.map((p) => (p.name === PAYLOAD.reports ? { ...p, records: counted(p.records, total, onProgress) } : p));
}

async function* counted(records: Iterable<unknown> | AsyncIterable<unknown>, total: number, onProgress: OnProgress): AsyncGenerator<unknown> {
  let done = 0;
  onProgress({ phase: 'write', done, total });
  for await (const r of records) {
    yield r;
    done += r instanceof NdjsonChunk ? r.records : 1;
    onProgress({ phase: 'write', done, total });
  }
}
