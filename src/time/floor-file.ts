import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The trusted-time floor, kept outside the database as well as in it. A restored database
 * carries the floor of the day it was backed up; this file carries the install's own, so the
 * higher of the two wins and a restore never revives a token or entitlement that had expired.
 */
export const floorFile = (dataDir: string) => join(dataDir, 'time-floor');

/** The floor the file holds, in ms; 0 when there is none or it cannot be read. */
export function readFloorFile(file: string): number {
  try {
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { floorMs?: unknown }).floorMs;
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
  } catch {
    return 0;
  }
}

/** Replaces the file atomically (a crash leaves the old floor or the new, never half of one). */
export function writeFloorFile(file: string, floorMs: number): void {
  const tmp = `${file}.new`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify({ floorMs, floor: new Date(floorMs).toISOString() }) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
