import { z } from 'zod';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { Pacer } from '../shared/pacer.js';
import type { ImportProgress, ImportProgressStore } from './import-progress.js';

export const ackSchema = z
  .strictObject({
    from: z.number().int().positive(),
    to: z.number().int().positive(),
    status: z.enum(['accepted', 'rejected']),
    reason: z.string().max(500).nullable(),
  })
  .refine((a) => a.to >= a.from, 'a run of refs ends before it starts');

export type Ack = z.infer<typeof ackSchema>;

/** Where the ACK slices write, and how many rows of pending reports one slice may settle. */
export interface AckSlices {
  db: Db;
  clock: Clock;
  progress: ImportProgressStore;
  sliceRows: number;
}

/**
 * Applies the ACKs from where `p` says the committed ones end, one slice per transaction.
 * A run of refs settles the reports of the answered bundle (written at `exportedAt`) in it that
 * are still pending and unchanged since it was written: a RUM report that grew since was
 * received later, and its newer copy waits for an answer of its own. A long run is cut at a
 * bounded number of pending rows; a slice that fails rolls back with its progress, so it is
 * applied again.
 */
export async function applyAcks(s: AckSlices, lines: Iterator<Ack>, exportedAt: number, p: ImportProgress, onLine?: (line: number) => void): Promise<void> {
  const record = s.db.prepare(
    `INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at)
     SELECT 'outpost', report_id, ?, ?, ? FROM report_pending WHERE destination = 'outpost' AND report_id BETWEEN ? AND ? AND since <= ?`,
  );
  const settle = s.db.prepare("DELETE FROM report_pending WHERE destination = 'outpost' AND report_id BETWEEN ? AND ? AND since <= ?");
  const cut = s.db.prepare("SELECT report_id FROM report_pending WHERE destination = 'outpost' AND report_id BETWEEN ? AND ? ORDER BY report_id LIMIT 1 OFFSET ?").pluck();
  let line = -1;
  let cur: Ack | undefined;
  const slice = s.db.transaction((limit: number): boolean => {
    const now = s.clock.now();
    let rows = 0;
    while (rows < limit) {
      if (!cur) {
        const next = lines.next();
        if (next.done) {
          s.progress.put(p);
          return true;
        }
        line++;
        if (line < p.line) {
          rows++; // committed by an earlier, interrupted import: read past, within the slice's bound
          continue;
        }
        cur = next.value;
        if (line > p.line) (p.line = line), (p.nextRef = 0);
      }
      const lo = Math.max(cur.from, p.nextRef);
      const end = (cut.get(lo, cur.to, limit - rows - 1) as number | undefined) ?? cur.to;
      const changed = record.run(cur.status, cur.reason, now, lo, end, exportedAt).changes;
      settle.run(lo, end, exportedAt);
      if (cur.status === 'accepted') p.accepted += changed;
      else if (changed) {
        p.rejected += changed;
        const reason = cur.reason ?? 'no reason given';
        p.rejectedReasons[reason] = (p.rejectedReasons[reason] ?? 0) + changed;
      }
      rows += end < cur.to ? limit : Math.max(1, changed);
      if (end < cur.to) p.nextRef = end + 1;
      else (cur = undefined), (p.line = line + 1), (p.nextRef = 0);
    }
    s.progress.put(p);
    return false;
  });
  const pacer = new Pacer();
  onLine?.(p.line);
  while (!slice(s.sliceRows)) onLine?.(p.line), await pacer.pause();
  onLine?.(p.line);
}
