import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { packageRoot } from '../../src/config/load.js';
import { tempDir } from '../helpers/temp.js';

describe('migrations 010 and 011: acknowledgement and ACK delivery per destination', () => {
  it("when a store from before it is opened, then the upstream's waits and ACKs become the Outpost upstream's, and the portal's ACKs join them", () => {
    const dir = tempDir('migrate');
    const before = join(dir, 'before');
    mkdirSync(before);
    const all = join(packageRoot, 'src/store/migrations');
    for (const f of readdirSync(all).filter((f) => f < '010')) copyFileSync(join(all, f), join(before, f));
    const file = join(dir, 'outpost.db');

    let db = openStore(file, { migrationsDir: before });
    expect(db.pragma('user_version', { simple: true })).toBe(9);
    db.prepare('INSERT INTO report_pending (report_id, since) VALUES (1, 100), (2, 200)').run();
    db.prepare("INSERT INTO report_acks (report_id, status, reason, acked_at) VALUES (3, 'rejected', 'unknown tag', 300)").run();
    db.prepare("INSERT INTO portal_uploads (id, file, time_tag, reports, created_at) VALUES ('pup_1', 'f', 't', 1, 400)").run();
    db.prepare("INSERT INTO portal_upload_reports (upload_id, dev_id, report_id) VALUES ('pup_1', '7', 2)").run();
    db.prepare("INSERT INTO portal_acks (report_id, upload_id, acked_at) VALUES (2, 'pup_1', 500)").run();
    db.prepare("INSERT INTO portal_deliveries (upload_id, dev_id, content, has_policy, received_at, attempts, last_error) VALUES ('pup_1', '7', X'3c61636b2f3e', 0, 600, 2, 'down')").run();
    db.close();

    db = openStore(file);
    expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(10);
    expect(db.prepare('SELECT destination, report_id, since FROM report_pending ORDER BY report_id').all()).toEqual([
      { destination: 'outpost', report_id: 1, since: 100 },
      { destination: 'outpost', report_id: 2, since: 200 },
    ]);
    expect(db.prepare('SELECT destination, report_id, status, reason, acked_at FROM report_acks ORDER BY report_id').all()).toEqual([
      { destination: 'portal', report_id: 2, status: 'accepted', reason: null, acked_at: 500 },
      { destination: 'outpost', report_id: 3, status: 'rejected', reason: 'unknown tag', acked_at: 300 },
    ]);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'portal_acks'").pluck().get()).toBe(0);
    // An upload written before it carries no version: its ACK settles the report whatever its version.
    expect(db.prepare('SELECT since FROM portal_upload_reports').pluck().get()).toBeNull();
    // Migration 011: the portal's ACK deliveries join the one table of deliveries, as they were.
    expect(db.prepare('SELECT destination, upload_id, dev_id, CAST(content AS TEXT) AS content, attempts, last_error FROM ack_deliveries').all()).toEqual([
      { destination: 'portal', upload_id: 'pup_1', dev_id: '7', content: '<ack/>', attempts: 2, last_error: 'down' },
    ]);
    expect(() => db.prepare("INSERT INTO report_pending (destination, report_id, since) VALUES ('elsewhere', 9, 1)").run()).toThrow(/CHECK constraint/);
    db.close();
  });
});
