import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfig } from '../../src/config/load.js';
import { startUpstream } from '../../src/upstream/server/start.js';
import { adminCall } from '../../src/upstream/server/admin-client.js';
import { upstreamMigrations } from '../../src/upstream/store.js';
import { latestVersion } from '../../src/store/migrate.js';
import { tempDir } from '../helpers/temp.js';
import { TAG } from '../helpers/harness.js';
import { upstreamAt001 } from './fixtures-001.js';

describe('an upstream database made at migration 001, opened by this version', () => {
  it('keeps its collectors, accounts and counted reports, and serves', async () => {
    const site = tempDir('upgrade-up');
    const dir = join(site, 'upstream');
    const old = upstreamAt001(dir);
    const config = loadConfig({ env: {}, overrides: { dataDir: join(site, 'data'), upstream: { dataDir: dir, port: 0, host: '127.0.0.1' } } });
    const up = await startUpstream(config);
    try {
      const db = up.service.db;
      expect(db.pragma('user_version', { simple: true })).toBe(latestVersion(upstreamMigrations));
      // 002 moved every report to the narrow keys: none lost, each still under its account and collector.
      expect(db.prepare('SELECT count(*) FROM reports r JOIN accounts a ON a.num = r.account JOIN collectors c ON c.num = r.collector WHERE a.id = ? AND c.id = ?').pluck().get(old.accountId, old.collectorId)).toBe(old.reports);
      const status = await adminCall(up.socketPath, 'status', {});
      expect(status.collectors).toEqual([expect.objectContaining({ id: old.collectorId, account: 'acme', usageHwm: 3, responses: 2 })]);
      // A write through the running upstream lands in the upgraded schema.
      const added = await adminCall(up.socketPath, 'entitlementAdd', { account: 'acme', va: 'Default', tag: TAG, displayName: 'DNA Advantage', kind: 'term', quantity: 5, startsAt: Date.now(), endsAt: null });
      expect(added).toEqual({ vaId: old.vaId, version: 2 });
      // Its sync listener answers a collector's hello.
      const res = await request(`${up.url}/sync/v1/hello`, { method: 'GET' });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(200);
    } finally {
      await up.stop();
    }
    const backups = readdirSync(join(dir, 'backups'));
    expect(backups).toEqual([expect.stringMatching(/^pre-migration-v1-to-v\d+-.*\.db$/)]);
    const c = new Database(join(dir, 'backups', backups[0]!), { readonly: true });
    try {
      expect(c.pragma('user_version', { simple: true })).toBe(1);
      expect(c.prepare('SELECT count(*) FROM reports').pluck().get()).toBe(old.reports);
    } finally {
      c.close();
    }
  });
});
