import { createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { badRequest, conflict } from '../shared/errors.js';
import { Pacer } from '../shared/pacer.js';
import { toIso } from '../shared/clock.js';
import { checkpointLine } from './checkpoint.js';
import type { CheckpointService } from './checkpoints.js';
import type { EventService } from './service.js';

export interface TrailExport {
  file: string;
  events: number;
  checkpoints: number;
  firstId: number | null;
  lastId: number | null;
}

/**
 * Writes the trail for a SIEM as JSON lines: every event after `since` (with its hashes, so the
 * receiver can recompute the chain), each checkpoint right after the event it signs. Rows are
 * read a slice at a time and written with back-pressure: memory stays flat however long the
 * trail. The file appears under its name only when complete, and an existing one is kept.
 */
export async function exportTrail(events: EventService, checkpoints: CheckpointService, o: { since: number; out: string }, sliceRows = 2_000): Promise<TrailExport> {
  if (existsSync(o.out)) throw conflict('file_exists', `${o.out} exists: the export does not overwrite a file; name another or remove it`);
  const head = events.head();
  // A few a day: held in memory, merged into the stream of events by their head.
  const cps = [...checkpoints.since(o.since + 1)];
  const partial = `${o.out}.partial`;
  const out = createWriteStream(partial, { mode: 0o600, flags: 'w' });
  const result: TrailExport = { file: o.out, events: 0, checkpoints: 0, firstId: null, lastId: null };
  const write = async (line: string) => {
    if (!out.write(line + '\n')) await once(out, 'drain');
  };
  try {
    await once(out, 'open');
    const pacer = new Pacer();
    let after = o.since;
    let ci = 0;
    while (after < head.id) {
      const rows = events.slice(after, head.id, sliceRows);
      if (!rows.length) break;
      for (const r of rows) {
        await write(JSON.stringify({
          kind: 'event', id: r.id, at: toIso(r.at), type: r.type, actor: r.actor, subject: r.subject, vaId: r.va_id,
          details: JSON.parse(r.details) as unknown, prevHash: r.prev_hash, hash: r.hash,
        }));
        result.firstId ??= r.id;
        result.lastId = r.id;
        result.events++;
        for (; ci < cps.length && cps[ci]!.eventId <= r.id; ci++, result.checkpoints++) await write(checkpointLine(cps[ci]!));
      }
      after = rows[rows.length - 1]!.id;
      await pacer.pause();
    }
    // Checkpoints whose head is no longer in the trail (it was cut short) go out too: they are the evidence.
    for (; ci < cps.length; ci++, result.checkpoints++) await write(checkpointLine(cps[ci]!));
    out.end();
    await once(out, 'finish');
    renameSync(partial, o.out);
    return result;
  } catch (e) {
    out.destroy();
    rmSync(partial, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw badRequest('folder_not_found', `the folder of ${o.out} does not exist`);
    if (code === 'EACCES') throw badRequest('permission_denied', `the collector may not write ${o.out}`);
    if (code === 'EISDIR') throw badRequest('not_a_file', `${o.out} is a folder`);
    throw e;
  }
}
