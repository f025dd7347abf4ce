import Database from 'better-sqlite3';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import nacl from 'tweetnacl';
import { claimStore, StoreLockedError, type Db } from '../store/open.js';
import { latestVersion, migrate } from '../store/migrate.js';
import { conflict } from '../shared/errors.js';
import { fingerprint, publicKeyFromSeed } from '../shared/ed25519.js';
import { EventService } from '../events/service.js';
import { floorFile, readFloorFile, writeFloorFile } from '../time/floor-file.js';
import { readBackup, type BackupManifest } from './format.js';
import { signEpoch, type EpochStatement } from './epoch.js';
import { syncDir } from './backup.js';
import type { OnProgress } from '../shared/progress.js';
import { carryDeviceChanges, type CarriedDevices } from './carry-devices.js';

export interface RestoreResult {
  restoredFrom: string;
  backup: Pick<BackupManifest, 'createdAt' | 'version' | 'schemaVersion' | 'withKeys' | 'collectorId' | 'eventHead'>;
  /** The new epoch the upstream is told of in the next usage bundle (null without the identity key). */
  epoch: number | null;
  timeFloor: { backup: string; install: string | null; kept: string };
  /** Where the store that was replaced now lies (kept, never deleted), or null when there was none. */
  previousStore: string | null;
  /** What the current install still had and the restore kept, in words. */
  kept: string[];
  /** What it could not keep, in words, each with what to do. */
  lost: string[];
  /** Deregistrations and VA moves made after the backup that the restore kept (null: the replaced store could not be read). */
  devices: CarriedDevices | null;
}

const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Puts a backup in place of the store, with the collector stopped (its lock is taken for the
 * whole restore). The backup is checked whole first; the store it replaces is moved aside, not
 * deleted. A restored collector is behind its upstream and its devices, so the restore also:
 * - keeps the higher trusted-time floor (the install's, from the database and the floor file,
 *   or the backup's): an expired token or entitlement stays expired;
 * - keeps the install's keys, and from its store (when it can still be read) the device keys
 *   and re-keys, the devices registered, deregistered and moved since (the in-use of the VAs
 *   they touch counted again), the upstream keys pinned since, and the acknowledgements
 *   received since (nothing an upstream already holds is sent as new);
 * - starts a new epoch, signed, which the next usage bundle carries to the upstream;
 * - appends a `collector.restored` event, so the trail's checkpoints read it as a restore.
 */
export interface RestoreOptions {
  dataDir: string;
  file: string;
  now: () => number;
  actor: string;
  /** Told of each step as it starts (check, copy, migrate, carry over, put in place), then of the end. */
  onProgress?: OnProgress;
}

/** The restore's steps, in order: `outpost restore` shows which one runs (the check of a large backup takes a while). */
export const RESTORE_STEPS = ['check', 'copy', 'migrate', 'carry over', 'put in place'] as const;

export function restoreBackup(o: RestoreOptions): RestoreResult {
  const dbFile = join(o.dataDir, 'outpost.db');
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  let lock: Db;
  try {
    lock = claimStore(dbFile);
  } catch (e) {
    if (e instanceof StoreLockedError) {
      throw conflict('collector_running', `a collector is running on ${o.dataDir} (it holds the store's lock): stop it first (systemctl stop outpost), then restore`);
    }
    throw e;
  }
  try {
    return restoreLocked(o, dbFile);
  } finally {
    lock.close();
  }
}

function restoreLocked(o: RestoreOptions, dbFile: string): RestoreResult {
  const step = (i: number) => o.onProgress?.({ phase: RESTORE_STEPS[i] ?? 'done', done: i, total: RESTORE_STEPS.length, unit: 'steps' });
  step(0);
  const { manifest: m, keys: backupKeys } = readBackup(o.file, { latestSchema: latestVersion() });
  const keysDir = join(o.dataDir, 'keys');
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  chmodSync(keysDir, 0o700);
  const current = readIdentity(keysDir);
  if (current && current.collectorId !== m.collectorId) {
    throw conflict('other_collector', `${o.file} is a backup of collector ${m.collectorId}; this install is collector ${current.collectorId}: restore it into that collector's data folder (or an empty one)`);
  }
  const when = stamp(o.now());
  const kept: string[] = [];
  const lost: string[] = [];
  placeKeys(keysDir, backupKeys, current !== null, when, kept);

  const work = join(o.dataDir, '.outpost.db.restoring');
  for (const f of [work, `${work}-journal`, `${work}-wal`, `${work}-shm`]) rmSync(f, { force: true });
  step(1);
  copyFileSync(o.file, work);
  chmodSync(work, 0o600);
  const hadStore = existsSync(dbFile);
  let epoch: number | null = null;
  let floors: RestoreResult['timeFloor'];
  let devices: CarriedDevices | null = null;
  const db = new Database(work);
  try {
    db.exec('DROP TABLE outpost_backup; DROP TABLE IF EXISTS outpost_backup_files');
    // A backup from an older version is brought up to this one's schema; the backup file is its own pre-migration copy.
    step(2);
    migrate(db, undefined, { copy: false });
    step(3);
    const cur = hadStore ? attachCurrent(db, dbFile, lost) : false;
    const fileFloor = readFloorFile(floorFile(o.dataDir));
    const curFloor = cur ? Number((db.prepare("SELECT value FROM cur.meta WHERE key = 'time_floor'").pluck().get() as string | undefined) ?? 0) : 0;
    const floor = Math.max(m.timeFloorMs, fileFloor, curFloor);
    floors = { backup: iso(m.timeFloorMs), install: Math.max(fileFloor, curFloor) ? iso(Math.max(fileFloor, curFloor)) : null, kept: iso(floor) };
    const restoredAt = Math.max(o.now(), floor);
    const seed = readSeed(keysDir);
    db.transaction(() => {
      if (cur) devices = carryOver(db, kept, lost, m.eventHead);
      else if (hadStore) lost.push('nothing was carried over from the replaced store (it could not be read): devices registered or re-keyed since the backup register again; reports acknowledged since may be sent again, and upstreams count them once');
      else lost.push('there was no store to carry anything over from: devices registered or re-keyed since the backup register again');
      setMeta(db, 'time_floor', String(floor));
      const metaNum = (schema: string, key: string) => Number((db.prepare(`SELECT value FROM ${schema}.meta WHERE key = ?`).pluck().get(key) as string | undefined) ?? 0);
      const outSeq = Math.max(metaNum('main', 'exchange.out_seq'), cur ? metaNum('cur', 'exchange.out_seq') : 0);
      setMeta(db, 'exchange.out_seq', String(outSeq));
      let statement: EpochStatement | null = null;
      if (seed) {
        epoch = Math.max(metaNum('main', 'exchange.epoch'), cur ? metaNum('cur', 'exchange.epoch') : 0) + 1;
        const pub = publicKeyFromSeed(seed);
        const secretKey = nacl.sign.keyPair.fromSeed(seed).secretKey;
        statement = signEpoch(
          { collectorId: m.collectorId, keyId: fingerprint(pub), epoch, fromSequence: outSeq, restoredAt: iso(restoredAt), backupCreatedAt: m.createdAt, backupEventHead: m.eventHead },
          (b) => Buffer.from(nacl.sign.detached(b, secretKey)),
        );
        setMeta(db, 'exchange.epoch', String(epoch));
        setMeta(db, 'exchange.epoch_statement', JSON.stringify(statement));
      } else {
        lost.push('the collector identity (keys/collector.key) is neither on this install nor in the backup: a new identity is made at start, and the upstream must enroll it again (`outpost sync enroll` or an enrollment bundle)');
      }
      sealedSecretsCheck(db, keysDir, lost);
      // IOS-XE devices hold their own reports: the first poll after the start fetches them again.
      if ((db.prepare('SELECT count(*) FROM polled_devices').pluck().get() as number) > 0) setMeta(db, 'restore.poll_after_start', '1');
      const previousHead = cur ? ((db.prepare('SELECT id, hash FROM cur.events ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined) ?? null) : null;
      const summary = {
        backup: basename(o.file), backupCreatedAt: m.createdAt, backupVersion: m.version, backupEventHead: m.eventHead,
        replacedEventHead: previousHead, epoch, fromSequence: outSeq, timeFloor: floors.kept, kept, lost, devices,
        ...(statement ? { statement } : {}),
      };
      setMeta(db, 'restore.last', JSON.stringify({ at: iso(restoredAt), ...summary, statement: undefined }));
      new EventService(db, { now: () => restoredAt }).append('collector.restored', o.actor, m.collectorId, null, summary);
    })();
    if (cur) db.exec('DETACH DATABASE cur');
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  step(4);
  fsyncFile(work);
  writeFloorFile(floorFile(o.dataDir), Date.parse(floors.kept));

  let previousStore: string | null = null;
  if (hadStore) {
    previousStore = `${dbFile}.before-restore-${when}`;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(dbFile + suffix)) renameSync(dbFile + suffix, previousStore + suffix);
  }
  renameSync(work, dbFile);
  syncDir(o.dataDir);
  step(RESTORE_STEPS.length);
  return {
    restoredFrom: o.file,
    backup: { createdAt: m.createdAt, version: m.version, schemaVersion: m.schemaVersion, withKeys: m.withKeys, collectorId: m.collectorId, eventHead: m.eventHead },
    epoch, timeFloor: floors, previousStore, kept, lost, devices,
  };
}

function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO main.meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}

function fsyncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readIdentity(keysDir: string): { collectorId: string } | null {
  try {
    return JSON.parse(readFileSync(join(keysDir, 'collector.json'), 'utf8')) as { collectorId: string };
  } catch {
    return null;
  }
}

function readSeed(keysDir: string): Buffer | null {
  try {
    const seed = Buffer.from(readFileSync(join(keysDir, 'collector.key'), 'utf8').trim(), 'base64');
    return seed.length === 32 ? seed : null;
  } catch {
    return null;
  }
}

/**
 * The install's keys win: they may be newer than the backup's (a rotation since). Keys the
 * install lacks come from the backup. The secret key is the one exception: the sealed secrets
 * in the restored store were sealed with the backup's, so a different one on the install is
 * set aside (kept) and the backup's used.
 */
function placeKeys(dir: string, fromBackup: Map<string, { mode: number; content: Buffer }>, hasIdentity: boolean, when: string, kept: string[]): void {
  const placed: string[] = [];
  const keptHere: string[] = [];
  for (const [name, k] of fromBackup) {
    const path = join(dir, name);
    if (!existsSync(path)) {
      // Both halves of the identity or neither: a key with another's collector.json would not load.
      if (hasIdentity && (name === 'collector.key' || name === 'collector.json')) continue;
      writeFileSync(path, k.content, { mode: 0o600, flag: 'wx' });
      placed.push(name);
      continue;
    }
    const same = readFileSync(path).equals(k.content);
    if (!same && name === 'secrets.key') {
      renameSync(path, `${path}.before-restore-${when}`);
      writeFileSync(path, k.content, { mode: 0o600, flag: 'wx' });
      placed.push(name);
      kept.push(`keys/secrets.key differed from the backup's: the backup's is used (the restored store's secrets were sealed with it), the other is kept as secrets.key.before-restore-${when}`);
      continue;
    }
    keptHere.push(name);
  }
  if (placed.length) kept.push(`keys from the backup: ${placed.join(', ')}`);
  if (keptHere.length) kept.push(`keys of this install kept: ${keptHere.join(', ')}`);
  if (!fromBackup.size) {
    const have = existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
    if (have.length) kept.push(`the backup holds no keys (made without --with-keys); this install's are kept: ${have.join(', ')}`);
  }
}

/** Attaches the store being replaced, if SQLite can still read it whole; false (and why, in `lost`) if not. */
function attachCurrent(db: Db, dbFile: string, lost: string[]): boolean {
  try {
    db.prepare('ATTACH DATABASE ? AS cur').run(dbFile);
    const check = db.pragma('cur.quick_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
    const v = db.pragma('cur.user_version', { simple: true }) as number;
    const mine = db.pragma('main.user_version', { simple: true }) as number;
    if (v !== mine) throw new Error(`it is at migration ${v}, this Outpost at ${mine}`);
    return true;
  } catch (e) {
    try {
      db.exec('DETACH DATABASE cur');
    } catch {
      // not attached
    }
    lost.push(`the replaced store could not be read (${(e as Error).message}): nothing was carried over from it`);
    return false;
  }
}

/** What the replaced store knew that happened after the backup and must not be forgotten. */
function carryOver(db: Db, kept: string[], lost: string[], backupHead: BackupManifest['eventHead']): CarriedDevices | null {
  const cols = (table: string) =>
    (db.prepare(`SELECT name FROM pragma_table_info('${table}', 'main')`).pluck().all() as string[]).filter((c) =>
      (db.prepare(`SELECT name FROM pragma_table_info('${table}', 'cur')`).pluck().all() as string[]).includes(c));

  // Keys: a device re-keyed since the backup signs with its new key; its old one must not come back.
  const rekeyed = db
    .prepare(
      `UPDATE main.devices SET public_key = c.public_key, pending_public_key = c.pending_public_key, pending_since = c.pending_since, pending_reason = c.pending_reason
       FROM cur.devices c WHERE c.id = main.devices.id AND (c.public_key IS NOT main.devices.public_key OR c.pending_public_key IS NOT main.devices.pending_public_key)`,
    )
    .run().changes;
  if (rekeyed) kept.push(`${rekeyed} device key(s) changed since the backup (re-keys, approvals)`);

  // Devices registered since: their registration and key, so they report at once; their reports come again.
  const dc = cols('devices').filter((c) => c !== 'last_seq');
  const newDevices = `FROM cur.devices c WHERE c.status != 'deregistered'
      AND NOT EXISTS (SELECT 1 FROM main.devices d WHERE d.id = c.id OR (d.udi_pid = c.udi_pid AND d.udi_serial = c.udi_serial))`;
  const orphans = db.prepare(`SELECT count(*) ${newDevices} AND NOT EXISTS (SELECT 1 FROM main.virtual_accounts v WHERE v.id = c.va_id)`).pluck().get() as number;
  const added = db
    .prepare(`INSERT INTO main.devices (${dc.join(', ')}) SELECT ${dc.map((c) => `c.${c}`).join(', ')} ${newDevices} AND EXISTS (SELECT 1 FROM main.virtual_accounts v WHERE v.id = c.va_id)`)
    .run().changes;
  if (added) {
    db.prepare('INSERT OR IGNORE INTO main.device_udis (udi, device_id) SELECT u.udi, u.device_id FROM cur.device_udis u WHERE EXISTS (SELECT 1 FROM main.devices d WHERE d.id = u.device_id)').run();
    kept.push(`${added} device(s) registered since the backup (their reports are sent again by the devices)`);
  }
  if (orphans) lost.push(`${orphans} device(s) registered since the backup into a virtual account the backup does not have: they register again`);

  // Upstream keys pinned since (an upstream's rotation): its next response is signed with one.
  const uk = cols('upstream_keys');
  const pinned = db.prepare(`INSERT OR REPLACE INTO main.upstream_keys (${uk.join(', ')}) SELECT ${uk.join(', ')} FROM cur.upstream_keys`).run().changes;
  if (pinned) kept.push(`${pinned} pinned upstream key(s), as the replaced store had them`);

  // Acknowledgements since: a report the backup holds as waiting, acknowledged since by a
  // destination (same device, id and content), is settled for it, so it is not sent again.
  const match = `JOIN cur.reports cr ON cr.id = ca.report_id
    JOIN main.reports mr ON mr.device_id = cr.device_id AND mr.source = cr.source AND mr.report_id = cr.report_id AND mr.content_hash = cr.content_hash
    WHERE NOT EXISTS (SELECT 1 FROM cur.report_pending cp WHERE cp.destination = ca.destination AND cp.report_id = cr.id)`;
  const acks = db
    .prepare(`INSERT OR REPLACE INTO main.report_acks (destination, report_id, status, reason, acked_at) SELECT ca.destination, mr.id, ca.status, ca.reason, ca.acked_at FROM cur.report_acks ca ${match}`)
    .run().changes;
  const settled = db
    .prepare(`DELETE FROM main.report_pending WHERE EXISTS (SELECT 1 FROM cur.report_acks ca ${match} AND mr.id = main.report_pending.report_id AND ca.destination = main.report_pending.destination)`)
    .run().changes;
  if (acks) kept.push(`${acks} acknowledgement(s) received since the backup (${settled} report wait(s) settled by them)`);

  // Deregistrations and moves since, after the devices registered since (which come in as the replaced store has them).
  return carryDeviceChanges(db, kept, lost, backupHead);
}

/** Sealed secrets with no key to open them: what doctor also reports, said here with the fix. */
function sealedSecretsCheck(db: Db, keysDir: string, lost: string[]): void {
  if (existsSync(join(keysDir, 'secrets.key'))) return;
  const polled = db.prepare('SELECT count(*) FROM main.polled_devices').pluck().get() as number;
  const cloud = db.prepare("SELECT count(*) FROM main.meta WHERE key = 'cssm.client_secret'").pluck().get() as number;
  if (polled) lost.push(`the passwords of ${polled} polled IOS-XE device(s) were sealed with keys/secrets.key, which neither this install nor the backup has: set each again (\`outpost cisco devices set ... --password-file\`)`);
  if (cloud) lost.push("the client secret for Cisco's cloud was sealed with keys/secrets.key, which neither this install nor the backup has: set it again (`outpost cisco cloud credentials --secret-file F`)");
}

