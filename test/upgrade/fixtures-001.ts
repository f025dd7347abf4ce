import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { applyPragmas } from '../../src/store/open.js';
import { collectorMigrations, migrate } from '../../src/store/migrate.js';
import { upstreamMigrations } from '../../src/upstream/store.js';
import { chainText, GENESIS } from '../../src/events/service.js';
import { sha256hex } from '../../src/shared/hash.js';
import { generateKeyPair } from '../../src/shared/ed25519.js';
import { TAG } from '../helpers/harness.js';

const HOUR = 3_600_000;

/** Appends events chained as the collector chains them, so the trail verifies after the upgrade. */
function chained(db: Database.Database, rows: { at: number; type: string; actor: string; subject: string | null; va_id: string | null; details: object }[]): void {
  let prev = GENESIS;
  const ins = db.prepare('INSERT INTO events (at, type, actor, subject, va_id, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  for (const r of rows) {
    const row = { ...r, details: JSON.stringify(r.details) };
    const hash = sha256hex(chainText(prev, row));
    ins.run(row.at, row.type, row.actor, row.subject, row.va_id, row.details, prev, hash);
    prev = hash;
  }
}

export interface Collector001 {
  file: string;
  defaultVa: string;
  branchVa: string;
  deviceId: string;
  /** The registered device's public key (base64), whose private half signs its next report. */
  devicePublicKey: string;
  deviceSeed: Buffer;
  tokenSecret: string;
  oldReportPk: number;
}

/**
 * A collector database as the first release left it (migration 001 only), holding what a site
 * had by then: an account, two VAs, a token, a registered device with a report counted,
 * entitlements, an alert, a refusal count and a chained audit trail.
 */
export function collectorAt001(dataDir: string, now = Date.now()): Collector001 {
  const file = join(dataDir, 'outpost.db');
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  applyPragmas(db);
  migrate(db, collectorMigrations, { upTo: 1 });
  const t0 = now - 48 * HOUR;
  const acc = 'acc_0001';
  const defaultVa = 'va_default01';
  const branchVa = 'va_branch01';
  const deviceId = 'dev_000000001';
  const kp = generateKeyPair();
  const tokenSecret = 'opt_' + randomBytes(32).toString('base64url');
  const report = { reportId: 'FCW0001-1', seq: 1, generatedAt: Math.floor((t0 + HOUR) / 1000), measurements: [{ tag: TAG, count: 3, start: Math.floor(t0 / 1000), end: Math.floor((t0 + HOUR) / 1000) }] };
  const body = JSON.stringify(report);
  let oldReportPk = 0;
  db.transaction(() => {
    const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    meta.run('account_id', acc);
    meta.run('account_name', 'Site account');
    meta.run('time_floor', String(t0 + 2 * HOUR));
    const va = db.prepare("INSERT INTO virtual_accounts (id, name, description, origin, created_at, updated_at) VALUES (?, ?, ?, 'local', ?, ?)");
    va.run(defaultVa, 'Default', 'Created at first start', t0, t0);
    va.run(branchVa, 'Branch', 'Branch offices', t0, t0);
    db.prepare('INSERT INTO tokens (id, va_id, secret_hash, description, expires_at, max_uses, uses, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run('tok_0001', defaultVa, sha256hex(tokenSecret), 'rollout', now + 30 * 24 * HOUR, 100, 1, t0);
    db.prepare(`INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, software_version, public_key, status, source, registered_at, last_seen_at, last_seq)
      VALUES (?, ?, 'C9300-24T', 'FCW0001', 'core-sw-1', '17.9.1', ?, 'active', 'registered', ?, ?, 1)`).run(deviceId, defaultVa, kp.publicKey.toString('base64'), t0, t0 + HOUR);
    db.prepare('INSERT INTO device_udis (udi, device_id) VALUES (?, ?)').run('C9300-24T:FCW0001', deviceId);
    oldReportPk = Number(db.prepare(`INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count)
      VALUES (?, 'device', ?, 1, ?, ?, ?, ?, 1)`).run(deviceId, report.reportId, report.generatedAt * 1000, t0 + HOUR, sha256hex(body), body).lastInsertRowid);
    db.prepare('INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, 3, ?, ?)').run(deviceId, TAG, (t0 + HOUR), oldReportPk);
    db.prepare('INSERT INTO va_usage (va_id, tag, in_use, devices) VALUES (?, ?, 3, 1)').run(defaultVa, TAG);
    db.prepare("INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES (?, ?, ?, 'DNA Advantage', 'subscription', 10, ?, ?, ?)")
      .run('ent_0001', defaultVa, TAG, t0 - 24 * HOUR, now + 365 * 24 * HOUR, t0);
    db.prepare("INSERT INTO alerts (kind, subject, severity, message, details, first_seen_at, last_seen_at) VALUES ('device_silent', ?, 'warning', 'core-sw-1 has not reported', '{}', ?, ?)")
      .run(deviceId, t0 + 2 * HOUR, t0 + 2 * HOUR);
    db.prepare("INSERT INTO refusals (reason, count, last_at) VALUES ('bad_signature', 4, ?)").run(t0 + HOUR);
    chained(db, [
      { at: t0, type: 'account.created', actor: 'system', subject: acc, va_id: null, details: {} },
      { at: t0, type: 'va.created', actor: 'system', subject: defaultVa, va_id: defaultVa, details: { name: 'Default' } },
      { at: t0, type: 'va.created', actor: 'admin', subject: branchVa, va_id: branchVa, details: { name: 'Branch' } },
      { at: t0, type: 'token.created', actor: 'admin', subject: 'tok_0001', va_id: defaultVa, details: { maxUses: 100 } },
      { at: t0, type: 'device.registered', actor: 'device', subject: deviceId, va_id: defaultVa, details: { udi: 'C9300-24T:FCW0001' } },
    ]);
  })();
  db.close();
  return { file, defaultVa, branchVa, deviceId, devicePublicKey: kp.publicKey.toString('base64'), deviceSeed: kp.seed, tokenSecret, oldReportPk };
}

export interface Upstream001 {
  file: string;
  accountId: string;
  collectorId: string;
  vaId: string;
  reports: number;
}

/**
 * An upstream database as the first release left it: an account, a collector it trusts with a
 * retired key, a VA with an entitlement of a catalogued tag, a device and the reports it counted,
 * the bundles that carried them and its events.
 */
export function upstreamAt001(dataDir: string, now = Date.now()): Upstream001 {
  const file = join(dataDir, 'upstream.db');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(file);
  db.pragma('page_size = 16384');
  applyPragmas(db);
  migrate(db, upstreamMigrations, { upTo: 1 });
  const t0 = now - 48 * HOUR;
  const accountId = 'acc_up0001';
  const collectorId = 'col_00000000-0000-4000-8000-000000000001';
  const vaId = 'va_up0001';
  const key = generateKeyPair().publicKey.toString('base64');
  const reports = 5;
  db.transaction(() => {
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('created_at', String(t0));
    db.prepare('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)').run(accountId, 'acme', t0);
    db.prepare('INSERT INTO collectors (id, account_id, public_key, key_id, usage_hwm, out_seq, added_at) VALUES (?, ?, ?, ?, 3, 2, ?)')
      .run(collectorId, accountId, key, 'kid-current', t0);
    db.prepare('INSERT INTO collector_keys (key_id, collector_id, public_key, until_sequence, grace_until, retired_at) VALUES (?, ?, ?, 2, ?, ?)')
      .run('kid-old', collectorId, generateKeyPair().publicKey.toString('base64'), now + 24 * HOUR, t0 + HOUR);
    db.prepare('INSERT INTO virtual_accounts (id, account_id, name, version, announced, created_at) VALUES (?, ?, ?, 1, 1, ?)').run(vaId, accountId, 'Default', t0);
    db.prepare('INSERT INTO tags (tag, display_name) VALUES (?, ?)').run(TAG, 'DNA Advantage');
    db.prepare("INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES ('ent_up1', ?, ?, 'DNA Advantage', 'term', 25, ?, NULL, ?)")
      .run(vaId, TAG, t0, t0);
    db.prepare('INSERT INTO devices (udi, account_id, collector_id, device_id, va_id, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run('C9300-24T:FCW0001', accountId, collectorId, 'dev_000000001', vaId, 'core-sw-1', t0);
    const rep = db.prepare('INSERT INTO reports (account_id, udi, report_id, measurements, tags, body, collector_id, received_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)');
    for (let i = 1; i <= reports; i++) rep.run(accountId, 'C9300-24T:FCW0001', `FCW0001-${i}`, TAG, JSON.stringify({ reportId: `FCW0001-${i}`, seq: i }), collectorId, t0 + i * HOUR);
    const b = db.prepare('INSERT INTO bundles (id, collector_id, direction, kind, sequence, hash, file, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    b.run('bun_in1', collectorId, 'in', 'usage', 3, 'a'.repeat(64), 'usage-3.tar', t0 + 6 * HOUR);
    b.run('bun_out1', collectorId, 'out', 'response', 2, 'b'.repeat(64), 'response-2.tar', t0 + 7 * HOUR);
    db.prepare("INSERT INTO events (at, type, subject, details) VALUES (?, 'collector.added', ?, '{}')").run(t0, collectorId);
  })();
  db.close();
  return { file, accountId, collectorId, vaId, reports };
}
