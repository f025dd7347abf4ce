import { lastBackupAt } from '../backup/last-backup.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import { nextCronRun } from '../time/zone.js';
import { ok, warn, type Check } from './check.js';

const DAY = 86_400_000;
const ago = (ms: number) => (ms >= 2 * DAY ? `${Math.floor(ms / DAY)} days` : `${Math.floor(ms / 3_600_000)} hours`);

/**
 * The longest gap between consecutive runs of a schedule, over its next few runs: a weekday-only
 * schedule waits three days over a weekend, and a backup that old is not late.
 */
export function scheduleInterval(cron: string, zone: string, from: number): number | null {
  let at = nextCronRun(cron, from, zone);
  if (at === null) return null;
  let longest = 0;
  for (let i = 0; i < 8; i++) {
    const next = nextCronRun(cron, at, zone);
    if (next === null) break;
    longest = Math.max(longest, next - at);
    at = next;
  }
  return longest || null;
}

/**
 * The age of the newest backup, from the trail (`backup.created`, whatever made it): a warning when
 * it is older than twice the schedule's interval, as one missed run is bad luck and two are a fault,
 * or when scheduled backups are off.
 */
export function backupAgeCheck(db: Db, config: Config, now: number): Check {
  const b = config.backup;
  const newest = lastBackupAt(db) ?? undefined;
  const last = newest === undefined ? 'no backup was ever made' : `the newest backup was made ${ago(now - newest)} ago`;
  if (!b.enabled) return warn('backups', `scheduled backups are off (backup.enabled is false); ${last}`, 'set backup.enabled to true, or make and keep backups another way (outpost backup FILE) and watch them');
  const interval = scheduleInterval(b.cron, config.time.zone, now);
  if (interval === null) return warn('backups', `backup.cron (${b.cron}) never runs; ${last}`, 'set backup.cron to a schedule that runs, e.g. "15 2 * * *"');
  const failure = db.prepare("SELECT at, details FROM events WHERE type = 'backup.failed' ORDER BY id DESC LIMIT 1").get() as { at: number; details: string } | undefined;
  const why = () => {
    if (!failure || (newest !== undefined && failure.at < newest)) return '';
    try {
      const e = (JSON.parse(failure.details) as { error?: unknown }).error;
      return typeof e === 'string' ? `; the last attempt, ${ago(now - failure.at)} ago, failed: ${e}` : '';
    } catch {
      return '';
    }
  };
  const fix = `check the collector's log and the backup.failed events (outpost events --type backup.failed), that ${b.dir} is writable by the service, then make one now: outpost backup`;
  if (newest === undefined) {
    const since = db.prepare('SELECT min(at) FROM events').pluck().get() as number | null;
    if (since !== null && now - since > 2 * interval) return warn('backups', `${last}, though the collector has run for ${ago(now - since)} and backup.cron runs every ${ago(interval)}${why()}`, fix);
    return ok('backups', `${last} yet; backup.cron (${b.cron}) makes the first`);
  }
  if (now - newest > 2 * interval) return warn('backups', `${last}, over twice backup.cron's interval (${ago(interval)})${why()}`, fix);
  return ok('backups', `${last} (backup.cron runs every ${ago(interval)})`);
}
