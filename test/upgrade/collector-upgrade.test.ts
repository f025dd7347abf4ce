import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { startHarness, TAG } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { collectorAt001 } from './fixtures-001.js';
import { latestVersion } from '../../src/store/migrate.js';
import { readBackup } from '../../src/backup/format.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { privateKeyObject } from '../../src/shared/ed25519.js';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';

describe('a collector database made at migration 001, opened by this version', () => {
  it('keeps its accounts, devices, reports, tokens, entitlements and trail, and counts a new report', async () => {
    const dataDir = join(tempDir('upgrade'), 'data');
    const old = collectorAt001(dataDir);
    const { identity } = loadOrCreateIdentity(dataDir);
    const h = await startHarness({ config: { dataDir } });
    try {
      const db = h.services.db;
      expect(db.pragma('user_version', { simple: true })).toBe(latestVersion());
      expect(h.services.accounts.account()).toMatchObject({ id: 'acc_0001', name: 'Site account' });
      expect(h.services.accounts.list().map((v) => v.name).sort()).toEqual(['Branch', 'Default']);

      // The device registered under 001 reports with its own key and is counted.
      const d = h.device('FCW0001');
      (d as unknown as { key: KeyObject }).key = privateKeyObject(old.deviceSeed);
      d.deviceId = old.deviceId;
      d.report(TAG, 0); // its seq 1 was sent under the old version
      expect(identity.collectorId).toBe(h.services.identity.collectorId);
      const r = await d.sendReport(d.report(TAG, 7));
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      expect(h.count('SELECT in_use FROM va_usage WHERE va_id = ? AND tag = ?', old.defaultVa, TAG)).toBe(7);
      expect(h.count('SELECT count(*) FROM reports WHERE device_id = ?', old.deviceId)).toBe(2);
      // The report from before the upgrade still waits for the upstream's acknowledgement (002 queued it).
      expect(h.count("SELECT count(*) FROM report_pending WHERE report_id = ? AND destination = 'outpost'", old.oldReportPk)).toBe(1);
      expect(h.count("SELECT tags_json = '[]' FROM reports WHERE id = ?", old.oldReportPk)).toBe(1);

      const devices = await h.api.get('/api/v1/devices');
      expect(devices.status).toBe(200);
      expect(JSON.stringify(devices.body)).toContain('core-sw-1');
      const compliance = await h.api.get(`/api/v1/virtual-accounts/${old.defaultVa}/compliance`);
      expect(compliance.status).toBe(200);
      expect(JSON.stringify(compliance.body)).toContain('"owned":10');

      // The token made under 001 still registers a device, and counts its use.
      const second = h.device('FCW0002');
      expect((await second.register(old.tokenSecret)).status).toBe(201);
      expect(h.count("SELECT uses FROM tokens WHERE id = 'tok_0001'")).toBe(2);

      expect(await h.services.events.verifyChain()).toBeNull();
      expect(h.count("SELECT count(*) FROM alerts WHERE kind = 'device_silent' AND subject = ?", old.deviceId)).toBe(1);
      expect(Number(h.services.db.prepare("SELECT value FROM meta WHERE key = 'time_floor'").pluck().get())).toBeGreaterThan(0);
    } finally {
      await h.close();
    }

    // The copy taken before migrating is the database as it was: version 1, its rows, owner-only.
    const backups = readdirSync(join(dataDir, 'backups'));
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(new RegExp(`^pre-migration-v1-to-v${latestVersion()}-.*\\.db$`));
    const copy = join(dataDir, 'backups', backups[0]!);
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    const c = new Database(copy, { readonly: true });
    try {
      expect(c.pragma('user_version', { simple: true })).toBe(1);
      expect(c.pragma('quick_check', { simple: true })).toBe('ok');
      expect(c.prepare('SELECT count(*) FROM reports').pluck().get()).toBe(1);
      expect(c.prepare('SELECT count(*) FROM events').pluck().get()).toBe(5);
    } finally {
      c.close();
    }

    // It is the way back from an upgrade that went wrong: `outpost restore` takes it (it was
    // refused as "not an Outpost backup"), and the store is as it was before the upgrade.
    expect(readBackup(copy, { latestSchema: latestVersion() }).manifest).toMatchObject({ reason: 'pre-migration', schemaVersion: 1, collectorId: identity.collectorId, withKeys: false });
    const restored = restoreBackup({ dataDir, file: copy, now: () => Date.now(), actor: 'test' });
    expect(restored.backup).toMatchObject({ schemaVersion: 1 });
    const back = await startHarness({ config: { dataDir } });
    try {
      expect(back.count('SELECT count(*) FROM reports WHERE device_id = ?', old.deviceId)).toBe(1);
      expect(back.count("SELECT count(*) FROM events WHERE type = 'collector.restored'")).toBe(1);
      expect(back.services.identity.collectorId).toBe(identity.collectorId);
    } finally {
      await back.close();
    }
  });
});
