import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { tempDir } from '../helpers/temp.js';
import { TAG } from '../helpers/harness.js';

describe('a database that holds a period ending in the year 3000 (written before periods were bounded)', () => {
  it('when the collector starts, then the pinned count falls back to the latest sound report, the counters agree, and an alert names the device', () => {
    const dir = tempDir('future');
    const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'data'), exchange: { bundleDir: join(dir, 'b') } } as never });
    const build = () => buildServices(config, { logger: createLogger('error', true) });
    const now = Math.floor(Date.now() / 1000);

    // As an older collector left it: a sound report (7 in use), then a pinned one (0 until 3000).
    let s = build();
    const va = s.accounts.list()[0]!.id;
    s.devices.repo.insert({
      id: 'dev_pinned', va_id: va, udi_pid: 'C9300-24T', udi_serial: 'PIN1', hostname: '', software_version: '', public_key: 'k',
      pending_public_key: null, pending_since: null, status: 'active', source: 'registered', registered_at: Date.now(), last_seen_at: Date.now(), last_seq: 2,
    });
    const insert = s.db.prepare(
      `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
       VALUES ('dev_pinned', 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
    );
    const body = (id: string, count: number, end: number) => JSON.stringify({ reportId: id, seq: 1, generatedAt: now, measurements: [{ tag: TAG, count, start: now - 60, end }] });
    const sound = Number(insert.run('sound', 1, now * 1000, Date.now(), 'h1', body('sound', 7, now - 30), JSON.stringify([TAG])).lastInsertRowid);
    const pinned = Number(insert.run('pinned', 2, now * 1000, Date.now(), 'h2', body('pinned', 0, 32503679999), JSON.stringify([TAG])).lastInsertRowid);
    s.licenses.ledger.apply({ id: 'dev_pinned', va_id: va, status: 'active' }, TAG, 7, (now - 30) * 1000, sound);
    s.licenses.ledger.apply({ id: 'dev_pinned', va_id: va, status: 'active' }, TAG, 0, 32503679999 * 1000, pinned);
    expect(s.db.prepare('SELECT in_use FROM va_usage WHERE va_id = ? AND tag = ?').get(va, TAG)).toEqual({ in_use: 0 });
    s.db.prepare("DELETE FROM meta WHERE key = 'repair_future_periods_v1'").run(); // an older database never ran it
    s.db.close();

    s = build();
    expect(s.db.prepare("SELECT count, period_end, report_pk FROM device_usage WHERE device_id = 'dev_pinned'").get()).toEqual({
      count: 7, period_end: (now - 30) * 1000, report_pk: sound,
    });
    expect(s.db.prepare('SELECT in_use FROM va_usage WHERE va_id = ? AND tag = ?').get(va, TAG)).toEqual({ in_use: 7 });
    const alert = s.alerts.list({ open: true, kind: 'future_period', limit: 10 }).items[0];
    expect(alert?.details).toMatchObject({ devices: ['dev_pinned'] });
    expect(s.db.prepare("SELECT count(*) AS n FROM events WHERE type = 'usage.future_periods_repaired'").get()).toEqual({ n: 1 });
    s.db.close();

    // Once per database: a later start changes nothing and raises nothing again.
    s = build();
    expect(s.db.prepare("SELECT count(*) AS n FROM events WHERE type = 'usage.future_periods_repaired'").get()).toEqual({ n: 1 });
    s.db.close();
  });
});
