import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY, seconds, startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { members } from '../helpers/tar-craft.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { migrate } from '../../src/store/migrate.js';

let h: Harness | undefined;
afterEach(() => h?.close());

const payload = (file: string, name: string) =>
  gunzipSync(members(file).find((m) => m.name === name)!.data)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the records of a usage bundle', () => {
  it('when reports and devices are exported, then each record is the stored row, bodies byte for byte', async () => {
    h = await startHarness();
    const d = h.device('FOCREC1');
    await d.register(await h.token(), 'core "east" é\\1');
    const report = d.report(TAG, 3, undefined, 'rec-"q"\\1');
    report.measurements.push({ ...report.measurements[0]!, tag: TAG2, count: 2 });
    expect((await d.sendReport(report)).status).toBe(200);
    const t = seconds(Date.now()) - DAY / 1000;
    const rum = rumElement({ pid: 'C9300-48P', serial: 'FOCRUM1', reportId: 77, tag: TAG, measurements: [{ start: t, end: t + 3600, count: 5 }] });
    await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(rum)).expect(200);

    const exp = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
    const reports = payload(exp.file, 'reports.ndjson.gz');
    const stored = h.services.db
      .prepare(
        `SELECT r.id, d.udi_pid || ':' || d.udi_serial AS udi, r.source, r.report_id, r.seq, r.generated_at, r.measurement_count, r.body
         FROM reports r JOIN devices d ON d.id = r.device_id ORDER BY r.id`,
      )
      .all() as { id: number; udi: string; source: string; report_id: string; seq: number | null; generated_at: number; measurement_count: number; body: string }[];
    expect(reports).toEqual(
      stored.map((r) => ({
        ref: r.id, udi: r.udi, source: r.source, reportId: r.report_id, seq: r.seq, generatedAt: r.generated_at / 1000,
        tags: r.source === 'rum' ? [TAG] : [TAG, TAG2], measurements: r.measurement_count, body: r.body,
      })),
    );
    expect(reports[1]!.body).toContain('\n'); // the RUM original, whitespace and all

    const devices = payload(exp.file, 'devices.ndjson.gz');
    const rows = h.services.db.prepare('SELECT * FROM devices ORDER BY id').all() as {
      id: string; udi_pid: string; udi_serial: string; va_id: string; hostname: string; software_version: string; status: string;
      registered_at: number; last_seen_at: number | null;
    }[];
    expect(devices).toEqual(
      rows.map((r) => ({
        deviceId: r.id, udi: `${r.udi_pid}:${r.udi_serial}`, udis: [`${r.udi_pid}:${r.udi_serial}`], vaId: r.va_id, hostname: r.hostname,
        softwareVersion: r.software_version, status: r.status, registeredAt: new Date(r.registered_at).toISOString(),
        lastSeenAt: r.last_seen_at === null ? null : new Date(r.last_seen_at).toISOString(),
      })),
    );
    expect(devices.map((x) => x.hostname)).toContain('core "east" é\\1');
  });
});

/**
 * A store at an earlier schema: the migrations in `dir` numbered below `before`, applied to a
 * fresh database in a temp folder. `done` applies the rest (as opening the store would).
 */
function storeBefore(dir: string, before: string): { db: Database.Database; done: () => void; remove: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), 'outpost-migrate-'));
  const early = join(tmp, 'early');
  mkdirSync(early);
  for (const f of readdirSync(dir).filter((f) => f < before)) copyFileSync(join(dir, f), join(early, f));
  const db = new Database(join(tmp, 'store.db'));
  migrate(db, early);
  return {
    db,
    done: () => migrate(db, dir),
    remove: () => {
      db.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

describe('store migrations', () => {
  it('when a collector store written before migration 003 is opened, then each report keeps its tags, now as a JSON array', () => {
    const s = storeBefore(join(import.meta.dirname, '../../src/store/migrations'), '003');
    try {
      const ins = s.db.prepare("INSERT INTO reports (device_id, source, report_id, received_at, content_hash, body, measurement_count, tags) VALUES ('dev_x', 'device', ?, 0, '', '{}', 1, ?)");
      ins.run('none', '');
      ins.run('two', `${TAG}\n${TAG2}`);
      ins.run('odd', 'a"b\\c');
      s.done();
      const tags = s.db.prepare('SELECT report_id, tags_json FROM reports ORDER BY id').all() as { report_id: string; tags_json: string }[];
      expect(tags.map((r) => [r.report_id, JSON.parse(r.tags_json)])).toEqual([['none', []], ['two', [TAG, TAG2]], ['odd', ['a"b\\c']]]);
    } finally {
      s.remove();
    }
  });

  it('when an upstream store written before its migration 002 is opened, then each report keeps its account and collector', () => {
    const s = storeBefore(join(import.meta.dirname, '../../src/upstream/migrations'), '002');
    try {
      s.db.exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acc_a', 'A', 0), ('acc_b', 'B', 0);
        INSERT INTO collectors (id, account_id, public_key, key_id, added_at) VALUES ('col_b', 'acc_b', 'k', 'f', 0);
        INSERT INTO reports (account_id, udi, report_id, measurements, tags, body, collector_id, received_at) VALUES ('acc_b', 'P:S', 'r1', 1, 't', '{}', 'col_b', 5);`);
      s.done();
      const row = s.db
        .prepare('SELECT a.id AS account, c.id AS collector, r.udi, r.report_id, r.received_at FROM reports r JOIN accounts a ON a.num = r.account JOIN collectors c ON c.num = r.collector')
        .get();
      expect(row).toEqual({ account: 'acc_b', collector: 'col_b', udi: 'P:S', report_id: 'r1', received_at: 5 });
    } finally {
      s.remove();
    }
  });
});
