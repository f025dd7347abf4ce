import type { Db } from '../store/open.js';

/**
 * When the newest backup was written, from the trail (`backup.created`, whatever made it: the
 * schedule, `outpost backup` against the running collector, or the API), not from a process's
 * memory: a restart keeps it. The events' type index finds the newest at once.
 */
export const LAST_BACKUP_SQL = "SELECT at FROM events WHERE type = 'backup.created' ORDER BY id DESC LIMIT 1";

export function lastBackupAt(db: Db): number | null {
  return (db.prepare(LAST_BACKUP_SQL).pluck().get() as number | undefined) ?? null;
}
