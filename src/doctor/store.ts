import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import { collectorMigrations, latestVersion } from '../store/migrate.js';
import { SecretBox } from '../cisco/secrets.js';
import { floorFile, readFloorFile } from '../time/floor-file.js';
import { fail, ok, warn, type Check } from './check.js';

const DAY = 86_400_000;
const RESTORE = 'stop the collector and restore the latest good backup (outpost restore FILE), or the pre-migration copy in data/backups/';

/**
 * Opens the database read-only, so the doctor may run beside a collector, or while it is
 * down, and never change what it examines. Returns the connection or the check that failed.
 */
export function openForDoctor(file: string): { db?: Db; check: Check } {
  if (!existsSync(file)) return { check: warn('database', `${file} does not exist`, 'start the collector once (outpost serve) to create it; after a restore, check the data folder named by the configuration') };
  let db: Db | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    const rows = db.pragma('quick_check(20)', { simple: false }) as { quick_check: string }[];
    const found = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
    if (found.length) {
      db.close();
      return { check: fail('database integrity', `quick_check found damage in ${file}: ${found.slice(0, 3).join('; ')}`, RESTORE) };
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    const latest = latestVersion(collectorMigrations);
    if (version > latest) {
      db.close();
      return { check: fail('database version', `${file} is at schema version ${version}, newer than this Outpost (${latest}): it was written by a newer Outpost`, 'run that version, or restore a backup made by this one') };
    }
    if (version < latest) return { db, check: warn('database', `${file} is intact, at schema version ${version}; this Outpost will migrate it to ${latest} at its next start`, 'nothing to do: a copy is taken before migrating (data/backups/)') };
    return { db, check: ok('database', `${file} is intact (quick_check), at schema version ${version}`) };
  } catch (e) {
    db?.close();
    return { check: fail('database integrity', `${file} cannot be read: ${(e as Error).message}`, RESTORE) };
  }
}

const meta = (db: Db, key: string): string | undefined => db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
const hasTable = (db: Db, name: string) => Boolean(db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name));
const ago = (ms: number) => (ms >= 2 * DAY ? `${Math.floor(ms / DAY)} days` : `${Math.floor(ms / 3_600_000)} hours`);

/**
 * The system clock against the trusted-time floor: a clock set back below it would revive what
 * has expired. The floor is the higher of the database's and the file kept beside it: a
 * restored database carries the floor of its backup's day, the file the install's own.
 */
export function clockChecks(db: Db | undefined, config: Config, dataDir: string, now: number): Check[] {
  if (now < Date.UTC(2020, 0, 1)) return [fail('clock', `the system clock reads ${new Date(now).toISOString()}`, 'set the clock (enable NTP: timedatectl set-ntp true)')];
  const out: Check[] = [];
  const inDb = db ? Number(meta(db, 'time_floor') ?? 0) : 0;
  const file = floorFile(dataDir);
  const inFile = readFloorFile(file);
  if (inDb && !inFile) {
    out.push(warn('time floor file', `${file} is missing (or unreadable) while the database holds a trusted-time floor (${new Date(inDb).toISOString()}): installed before the file was kept, or restored without it`, 'nothing to do if the collector runs: it writes the file again within a minute; otherwise start it (outpost serve)'));
  }
  const floor = Math.max(inDb, inFile);
  const where = !floor ? '' : inFile > inDb ? ` (from ${file}, above the database's${inDb ? ` ${new Date(inDb).toISOString()}` : ''})` : '';
  if (!floor) return [...out, ok('clock', `${new Date(now).toISOString()}; no trusted-time floor recorded yet`)];
  const at = `${new Date(floor).toISOString()}${where}`;
  const tolerance = config.time.backwardsToleranceSeconds * 1000;
  if (now < floor - tolerance) {
    out.push(fail('clock', `the system clock (${new Date(now).toISOString()}) is behind the trusted-time floor (${at}) by ${ago(floor - now)}`, 'set the clock right (enable NTP: timedatectl set-ntp true); if the floor itself is wrong, see outpost time status and outpost time reset-floor'));
  } else if (now - floor > config.time.maxDowntimeDays * DAY) {
    out.push(warn('clock', `the system clock is ${ago(now - floor)} past the trusted-time floor (${at}), more than time.maxDowntimeDays`, 'check the clock; if it is right, confirm it with outpost time confirm after starting the collector'));
  } else out.push(ok('clock', `${new Date(now).toISOString()}, not behind the trusted-time floor (${at})`));
  return out;
}

interface LastRestore {
  at?: string;
  backup?: string;
  epoch?: number | null;
  lost?: unknown;
}

/**
 * What the last restore could not keep (restore.last), one warning each. Each line the restore
 * wrote ends with what follows from it and what to do, after its last colon: that part is the fix.
 */
export function restoreChecks(db: Db): Check[] {
  const raw = meta(db, 'restore.last');
  if (!raw) return [];
  let r: LastRestore;
  try {
    r = JSON.parse(raw) as LastRestore;
  } catch {
    return [warn('restore', 'the record of the last restore (meta restore.last) cannot be read', 'see the collector.restored event: outpost events --type collector.restored')];
  }
  const from = `the restore of ${r.backup ?? 'a backup'} on ${r.at ?? 'an unknown date'}${r.epoch ? ` (epoch ${r.epoch})` : ''}`;
  const lost = Array.isArray(r.lost) ? r.lost.filter((l): l is string => typeof l === 'string' && l.length > 0) : [];
  if (!lost.length) return [ok('restore', `${from} kept everything`)];
  return lost.map((l) => {
    const cut = l.lastIndexOf(': ');
    return cut > 0 ? warn('restore', `${from} could not keep: ${l.slice(0, cut)}`, l.slice(cut + 2)) : warn('restore', `${from} could not keep: ${l}`, l);
  });
}

/** How long usage has waited to leave the site, and to be acknowledged. */
export function exchangeChecks(db: Db, config: Config, now: number): Check[] {
  const out: Check[] = [];
  const interval = config.policy.reportingIntervalDays * DAY;
  // Usage leaves by whichever way the site uses: a bundle, an Outpost sync, a Cisco cloud sync, or the portal's upload file.
  const lastBundle = hasTable(db, 'bundles') ? (db.prepare("SELECT max(created_at) FROM bundles WHERE direction = 'out' AND kind = 'usage'").pluck().get() as number | null) : null;
  const lastPortal = hasTable(db, 'portal_uploads') ? (db.prepare('SELECT max(created_at) FROM portal_uploads').pluck().get() as number | null) : null;
  const last = Math.max(lastBundle ?? 0, lastPortal ?? 0, Number(meta(db, 'sync.last_success_at') ?? 0) || 0, Number(meta(db, 'cssm.last_success_at') ?? 0) || 0);
  const how = config.exchange.mode === 'connected' ? 'check the sync: outpost sync status, then outpost sync now' : 'export usage: outpost export, and carry the bundle to the upstream';
  const pending = hasTable(db, 'report_pending') ? (db.prepare('SELECT min(since) FROM report_pending').pluck().get() as number | null) : null;
  if (!last) {
    if (pending !== null && now - pending > interval) {
      out.push(warn('last export', `no usage was ever exported, and reports have waited ${ago(now - pending)}, over the reporting interval (${config.policy.reportingIntervalDays} days)`, how));
    } else out.push(ok('last export', 'no usage exported yet'));
  } else if (now - last > 2 * interval) out.push(fail('last export', `the last usage export or sync was ${ago(now - last)} ago, over twice the reporting interval (${config.policy.reportingIntervalDays} days)`, how));
  else if (now - last > interval) out.push(warn('last export', `the last usage export or sync was ${ago(now - last)} ago, over the reporting interval (${config.policy.reportingIntervalDays} days)`, how));
  else out.push(ok('last export', `${ago(now - last)} ago`));

  if (!hasTable(db, 'report_pending')) return out;
  const oldest = db.prepare('SELECT destination, min(since) AS since, count(*) AS n FROM report_pending GROUP BY destination ORDER BY since').all() as { destination: string; since: number; n: number }[];
  if (!oldest.length) {
    out.push(ok('acknowledgements', 'no report waits for an acknowledgement'));
    return out;
  }
  const due = config.policy.ackDueDays * DAY;
  for (const o of oldest) {
    const age = now - o.since;
    const line = `${o.n} report(s) wait for the ${o.destination} acknowledgement, the oldest for ${ago(age)}`;
    if (age > due) out.push(fail(`acknowledgements (${o.destination})`, `${line}, over policy.ackDueDays (${config.policy.ackDueDays})`, `${how}; then import the upstream's answer (outpost import FILE) if it came back as a file`));
    else out.push(ok(`acknowledgements (${o.destination})`, line));
  }
  return out;
}

/**
 * What a restore without keys leaves behind: sealed secrets in the database that no key on the
 * host opens, and an identity the database knows whose private key is gone.
 */
export function keyChecks(db: Db, dataDir: string): Check[] {
  const out: Check[] = [];
  const keys = join(dataDir, 'keys');
  const sealed: { what: string; value: string; boundTo: string; fix: string }[] = [];
  if (hasTable(db, 'polled_devices')) {
    for (const r of db.prepare('SELECT id, name, password_enc FROM polled_devices LIMIT 1').all() as { id: string; name: string; password_enc: string }[]) {
      sealed.push({ what: `the password of polled device ${r.name}`, value: r.password_enc, boundTo: r.id, fix: 'set each polled device\'s password again (outpost cisco devices edit DEVICE --password-file FILE)' });
    }
  }
  const cloud = meta(db, 'cssm.client_secret');
  if (cloud) sealed.push({ what: "the Cisco cloud client secret", value: cloud, boundTo: 'cssm.client_secret', fix: 'set it again: outpost cisco cloud credentials --secret-file FILE' });
  const secretsKey = join(keys, 'secrets.key');
  if (sealed.length) {
    const restore = `restore ${secretsKey} from a backup made with --with-keys (mode 0600)`;
    if (!existsSync(secretsKey)) {
      out.push(fail('secret key', `the database holds ${sealed.map((s) => s.what).join(' and ')}, sealed with ${secretsKey}, which is missing (restored without keys?)`, `${restore}; or else ${sealed.map((s) => s.fix).join('; ')}`));
    } else {
      const box = new SecretBox(dataDir);
      const bad = sealed.filter((s) => {
        try {
          box.open(s.value, s.boundTo);
          return false;
        } catch {
          return true;
        }
      });
      if (bad.length) out.push(fail('secret key', `${secretsKey} does not open ${bad.map((s) => s.what).join(' and ')}: it is not the key they were sealed with`, `${restore}; or else ${bad.map((s) => s.fix).join('; ')}`));
      else out.push(ok('secret key', `${secretsKey} opens the sealed secrets`));
    }
  }
  const identityKey = join(keys, 'collector.key');
  const known = hasTable(db, 'events') && db.prepare("SELECT 1 FROM events WHERE type = 'collector.identity_created' LIMIT 1").get();
  if (known && !existsSync(identityKey)) {
    out.push(fail('identity key', `the database belongs to a collector with an identity, but ${identityKey} is missing (restored without keys?): a start would make a new identity that the upstream does not know`, `restore ${identityKey} and ${join(keys, 'collector.json')} from a backup made with --with-keys before starting the collector`));
  } else if (known) out.push(ok('identity key', `${identityKey} is present`));
  return out;
}
