import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { badRequest } from '../shared/errors.js';
import { checkpointFault, checkpointSchema, type Checkpoint } from './checkpoint.js';
import type { CheckpointService } from './checkpoints.js';
import type { EventService } from './service.js';
import { checkTrail, type TrailReport } from './trail-check.js';

/**
 * Reads a JSON-lines file of checkpoints (the upstream's export, or `outpost events export`,
 * whose event lines are passed over). A line that is neither is refused with its number.
 */
export async function readCheckpointFile(file: string): Promise<Checkpoint[]> {
  const out: Checkpoint[] = [];
  let n = 0;
  let lines;
  try {
    lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      n++;
      if (!line.trim()) continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw badRequest('bad_checkpoint_file', `${file} line ${n} is not JSON`);
      }
      const { kind, ...rest } = (typeof v === 'object' && v !== null ? v : {}) as { kind?: unknown };
      if (kind === 'event') continue;
      if (kind !== 'checkpoint') throw badRequest('bad_checkpoint_file', `${file} line ${n} is neither a checkpoint nor an event (its "kind" is ${JSON.stringify(kind ?? null)})`);
      const p = checkpointSchema.safeParse(rest);
      if (!p.success) {
        const i = p.error.issues[0]!;
        throw badRequest('bad_checkpoint_file', `${file} line ${n}: ${i.path.join('.') || 'the checkpoint'}: ${i.message}`);
      }
      out.push(p.data);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw badRequest('file_not_found', `there is no file ${file}`);
    if (code === 'EACCES') throw badRequest('permission_denied', `the collector may not read ${file}`);
    if (code === 'EISDIR') throw badRequest('not_a_file', `${file} is a folder, not a file of checkpoints`);
    throw e;
  }
  if (!out.length) throw badRequest('bad_checkpoint_file', `${file} holds no checkpoint`);
  return out;
}

/**
 * Checks the trail against signed checkpoints: those of a file (each must verify with one of
 * the collector's keys, current or retired, or the file is refused), or the local copies (a
 * local copy that does not verify is itself a finding: someone wrote into the table).
 */
export async function verifyTrail(events: EventService, checkpoints: CheckpointService, collectorId: string, file?: string): Promise<TrailReport & { refused?: { checkpoint: Checkpoint; reason: string } }> {
  const keys = checkpoints.keys();
  if (file) {
    const cps = await readCheckpointFile(file);
    cps.forEach((c, i) => {
      const fault = checkpointFault(c, collectorId, keys);
      if (fault) throw badRequest('forged_checkpoint', `checkpoint ${i + 1} of ${file} (head event ${c.eventId}, ${c.at}) is refused: ${fault}`, { index: i + 1, eventId: c.eventId });
    });
    return checkTrail(events, cps, 'file');
  }
  const cps = checkpoints.all();
  const good: Checkpoint[] = [];
  let refused: { checkpoint: Checkpoint; reason: string } | undefined;
  for (const c of cps) {
    const fault = checkpointFault(c, collectorId, keys);
    if (fault) refused ??= { checkpoint: c, reason: fault };
    else good.push(c);
  }
  const report = await checkTrail(events, good, 'local');
  if (!refused) return report;
  // The chain's own finding comes first when there is one; else the forged row is the finding.
  return {
    ...report, intact: false, refused,
    finding: report.finding ?? {
      kind: 'forged_checkpoint', eventId: refused.checkpoint.eventId, range: { from: refused.checkpoint.eventId, to: refused.checkpoint.eventId },
      checkpoint: { eventId: refused.checkpoint.eventId, count: refused.checkpoint.count, at: refused.checkpoint.at, keyId: refused.checkpoint.keyId },
      message: `a local checkpoint (head event ${refused.checkpoint.eventId}, ${refused.checkpoint.at}) does not verify: ${refused.reason}; someone wrote into the checkpoint table`,
    },
  };
}
