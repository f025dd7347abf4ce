import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../../src/store/open.js';

/**
 * What the collector has stored, as one hash per table (every row, every column) and the files
 * under the bundle folder: two snapshots are equal exactly when nothing was written.
 * Left out, because they are written by design on a refusal: the refusal counter (a count per
 * reason, flushed at most once a minute as a `security.refused` event) and the trusted-time floor.
 */
export function snapshot(db: Db, bundleDir?: string): Record<string, string> {
  const out: Record<string, string> = {};
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  for (const t of tables) {
    if (t === 'refusals') continue;
    const where = t === 'events' ? " WHERE type != 'security.refused'" : t === 'meta' ? " WHERE key != 'time_floor'" : '';
    const rows = db.prepare(`SELECT * FROM "${t}"${where}`).raw().all() as unknown[][];
    const lines = rows.map((r) => JSON.stringify(r, (_k, v) => (Buffer.isBuffer(v) ? v.toString('base64') : typeof v === 'bigint' ? String(v) : v))).sort();
    out[t] = `${rows.length}:${createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16)}`;
  }
  if (bundleDir) out['files:' + bundleDir] = listing(bundleDir).join('\n');
  return out;
}

function listing(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...listing(p, prefix + n + '/'));
    else out.push(`${prefix}${n} ${st.size}`);
  }
  return out;
}

/** The tables whose hash differs, with both sides: what a failing case wrote. */
export function changes(before: Record<string, string>, after: Record<string, string>): Record<string, [string | undefined, string | undefined]> {
  const out: Record<string, [string | undefined, string | undefined]> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) if (before[k] !== after[k]) out[k] = [before[k], after[k]];
  return out;
}
