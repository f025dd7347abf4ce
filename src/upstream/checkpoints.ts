import { createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { checkpointFault, checkpointLine, checkpointSchema, type Checkpoint } from '../events/checkpoint.js';
import type { Manifest } from '../exchange/manifest.js';
import { UpstreamError, type UpstreamService } from './service.js';

export type CheckpointReceipt = { status: 'stored' | 'already_stored'; eventId: number } | { status: 'refused'; reason: string } | null;

/** The collector's keys as pinned here: the current one and those it retired by rotation. */
export function pinnedKeys(up: UpstreamService, collectorId: string): Map<string, Buffer> {
  const rows = up.db
    .prepare('SELECT key_id, public_key FROM collectors WHERE id = ? UNION ALL SELECT key_id, public_key FROM collector_keys WHERE collector_id = ?')
    .all(collectorId, collectorId) as { key_id: string; public_key: string }[];
  return new Map(rows.map((r) => [r.key_id, Buffer.from(r.public_key, 'base64')]));
}

/**
 * Verifies the checkpoint a usage bundle carries against the collector's pinned keys, and keeps
 * it. Call inside the transaction that records the bundle. A checkpoint that does not verify
 * is not kept and is recorded as an event; the usage is counted all the same (the manifest that
 * carries it is verified on its own), so a collector's bad checkpoint never holds up its licenses.
 */
export function receiveCheckpoint(up: UpstreamService, m: Manifest, now: number): CheckpointReceipt {
  const raw = m.meta.eventCheckpoint;
  if (raw === undefined) return null; // a collector from before checkpoints
  const parsed = checkpointSchema.safeParse(raw);
  const fault = parsed.success
    ? checkpointFault(parsed.data, m.collectorId, pinnedKeys(up, m.collectorId))
    : `it is malformed: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`;
  if (fault || !parsed.success) {
    const reason = fault ?? 'it is malformed';
    up.event('checkpoint.refused', m.collectorId, { bundle: m.bundleId, reason });
    return { status: 'refused', reason };
  }
  const c = parsed.data;
  const r = up.db
    .prepare('INSERT OR IGNORE INTO event_checkpoints (collector_id, key_id, event_id, hash, count, at, signature, bundle_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
    .run(c.collectorId, c.keyId, c.eventId, c.hash, c.count, c.at, c.signature, m.bundleId, now);
  return { status: r.changes ? 'stored' : 'already_stored', eventId: c.eventId };
}

interface Row {
  collector_id: string; key_id: string; event_id: number; hash: string; count: number; at: string; signature: string;
}

/**
 * Writes a collector's checkpoints as JSON lines, oldest head first: the file
 * `outpost events verify --checkpoints` reads on the collector's side.
 */
export async function exportCheckpoints(up: UpstreamService, collectorId: string, file: string): Promise<{ collectorId: string; file: string; checkpoints: number }> {
  if (!up.collector(collectorId)) throw new UpstreamError('unknown_collector', `collector ${collectorId} is not enrolled here`);
  if (existsSync(file)) throw new UpstreamError('file_exists', `${file} exists: the export does not overwrite a file; name another or remove it`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { mode: 0o644 });
  let n = 0;
  try {
    await once(out, 'open');
    const rows = up.db.prepare('SELECT * FROM event_checkpoints WHERE collector_id = ? ORDER BY event_id, id').all(collectorId) as Row[];
    for (const r of rows) {
      const c: Checkpoint = { collectorId: r.collector_id, keyId: r.key_id, eventId: r.event_id, hash: r.hash, count: r.count, at: r.at, signature: r.signature };
      if (!out.write(checkpointLine(c) + '\n')) await once(out, 'drain');
      n++;
    }
    out.end();
    await once(out, 'finish');
    renameSync(partial, file);
  } catch (e) {
    out.destroy();
    rmSync(partial, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UpstreamError('folder_not_found', `the folder of ${file} does not exist`);
    if (code === 'EACCES') throw new UpstreamError('permission_denied', `the upstream may not write ${file}`);
    throw e;
  }
  return { collectorId, file, checkpoints: n };
}
