import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG, TAG2 } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { seedPendingReports } from '../helpers/seed-reports.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
});
afterEach(() => s.close());

const seedReports = (n: number, tagOf: (k: number) => string) => seedPendingReports(s.h.services.db, s.h.defaultVa, n, tagOf, 100);

const buy = (quantity: number) =>
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'subscription', quantity, startsAt: Date.now() - 86_400_000, endsAt: Date.now() + 365 * 86_400_000 });

/** A response to n reports; those of a tag the upstream does not know are rejected. */
async function response(n: number, tagOf: (k: number) => string = () => TAG): Promise<string> {
  seedReports(n, tagOf);
  buy(7);
  const processed = await s.up.process((await s.exportNow()).file);
  expect(processed.reports.accepted + processed.reports.rejected).toBe(n);
  return processed.responseFile;
}

const count = (sql: string, ...args: unknown[]) => s.h.count(sql, ...args);
const imported = () => count("SELECT count(*) FROM events WHERE type = 'exchange.imported'");

describe('a response import interrupted while its ACKs are applied', () => {
  it('then nothing of its snapshot or marks is applied, another response waits, and importing it again completes it once', async () => {
    const N = 12_000;
    // Every third report is of a tag the upstream does not know: runs of 2 accepted, 1 rejected,
    // so the ACKs are thousands of lines and the interruption falls in the middle of them.
    const file = await response(N, (k) => (k % 3 === 2 ? TAG2 : TAG));
    const importer = s.h.services.exchange.importer;
    importer.ackSliceRows = 1_000;
    // The disk fails part-way: the 7,500th pending report cannot be written.
    const cutAt = count('SELECT report_id FROM report_pending ORDER BY report_id LIMIT 1 OFFSET 7499');
    s.h.services.db.exec(`CREATE TEMP TRIGGER disk_full BEFORE INSERT ON report_acks WHEN NEW.report_id >= ${cutAt} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
    await expect(importer.import(file, { force: false, actor: 'test' })).rejects.toThrow(/disk I\/O error/);

    // Whole slices before the failure are committed; nothing after them, nothing of the snapshot.
    expect(count('SELECT count(*) FROM report_acks')).toBe(7_000);
    expect(count('SELECT count(*) FROM report_pending')).toBe(N - 7_000);
    expect(count('SELECT count(*) FROM entitlements')).toBe(0);
    expect(count('SELECT count(*) FROM entitlement_versions')).toBe(0);
    expect(s.h.services.exchange.state.responseHwm).toBe(0);
    expect(s.h.services.exchange.state.answeredHwm).toBe(0);
    expect(count("SELECT count(*) FROM bundles WHERE direction = 'in'")).toBe(0);
    expect(s.h.services.policy.get().version).toBe(0);
    expect(imported()).toBe(0);

    // Another response cannot start while this one is half applied.
    s.h.services.db.exec('DROP TRIGGER disk_full');
    const other = await s.up.process((await s.exportNow('2026-12')).file);
    const refused = await s.importFile(other.responseFile);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'import_in_progress', details: { sequence: 1 } });
    expect(count('SELECT count(*) FROM report_acks')).toBe(7_000);

    // The same file again: resumed where the committed slices end, not refused as a replay.
    const done = await s.importFile(file);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'applied', resumed: true, acks: { accepted: (N / 3) * 2, rejected: N / 3, stale: 0 }, entitlements: { applied: 1 }, policy: 'applied' });
    const rejected = (await s.h.api.get('/api/v1/alerts?kind=report_rejected')).body.items;
    expect(rejected).toHaveLength(1);
    expect(rejected[0].details.count).toBe(N / 3);
    expect(count("SELECT count(*) FROM report_acks WHERE status = 'rejected'")).toBe(N / 3);
    expect(count('SELECT count(*) FROM report_acks')).toBe(N);
    expect(count('SELECT count(*) FROM report_pending')).toBe(0);
    expect(count('SELECT count(*) FROM entitlements')).toBe(1);
    expect(s.h.services.exchange.state.responseHwm).toBe(1);
    expect(imported()).toBe(1);
    const ev = (await s.h.api.get('/api/v1/events?type=exchange.imported')).body.items[0];
    expect(ev.details).toMatchObject({ acks: { accepted: (N / 3) * 2, rejected: N / 3 }, resumed: true });
    expect((await s.importFile(file)).body.status).toBe('already_imported');

    // Now the other one may go; its reports were all settled already.
    expect((await s.importFile(other.responseFile)).body).toMatchObject({ status: 'applied', acks: { accepted: 0 }, resumed: false });
  });

  it('then a different response may abandon it when forced: the ACKs applied stay, its snapshot never applies', async () => {
    const file = await response(3_000);
    const importer = s.h.services.exchange.importer;
    importer.ackSliceRows = 1_000;
    const cutAt = count('SELECT report_id FROM report_pending ORDER BY report_id LIMIT 1 OFFSET 1500');
    s.h.services.db.exec(`CREATE TEMP TRIGGER disk_full BEFORE INSERT ON report_acks WHEN NEW.report_id >= ${cutAt} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
    await expect(importer.import(file, { force: false, actor: 'test' })).rejects.toThrow(/disk I\/O error/);
    s.h.services.db.exec('DROP TRIGGER disk_full');
    buy(9);
    const other = await s.up.process((await s.exportNow('2026-12')).file);
    const forced = await s.importFile(other.responseFile, true);
    expect(forced.body).toMatchObject({ status: 'applied', acks: { accepted: 2_000 }, entitlements: { applied: 1 } });
    expect(count('SELECT count(*) FROM report_acks')).toBe(3_000);
    expect(count("SELECT count(*) FROM events WHERE type = 'exchange.import_abandoned'")).toBe(1);
    // The abandoned one is now an ordinary, older response: refused as a replay.
    expect((await s.importFile(file)).body.error.code).toBe('replay');
  });
});

describe('a response import of 50,000 ACKs while devices report', () => {
  it('then the ACKs are committed in slices with the event loop free between them, and device reports are answered meanwhile', async () => {
    const N = 50_000;
    const file = await response(N);
    const importer = s.h.services.exchange.importer;
    importer.ackSliceRows = 2_000;
    const d = await s.h.registered();
    const acks = s.h.services.db.prepare('SELECT count(*) FROM report_acks').pluck();
    const mine = s.h.services.db.prepare("SELECT count(*) FROM reports WHERE device_id = ?").pluck();

    // Between slices, read what is committed: every value seen is a whole number of slices.
    const seen: number[] = [];
    const reportsCommittedMidway: number[] = [];
    let running = true;
    const sample = () => {
      const a = acks.get() as number;
      seen.push(a);
      if (a > 0 && a < N) reportsCommittedMidway.push(mine.get(d.deviceId) as number);
      if (running) setImmediate(sample);
      else sampled();
    };
    let sampled!: () => void;
    const samplerDone = new Promise<void>((r) => (sampled = r));
    const job = importer.import(file, { force: false, actor: 'test' }).finally(() => (running = false));
    setImmediate(sample);
    let sent = 0;
    const load = (async () => {
      while (running) {
        expect((await d.sendReport(d.report(TAG, 1))).status).toBe(200);
        sent++;
      }
    })();
    const r = await job;
    await load;
    await samplerDone; // its last read is done before the store closes
    expect(r.acks.accepted).toBe(N);
    const midway = [...new Set(seen.filter((a) => a > 0 && a < N))];
    expect(midway.length).toBeGreaterThanOrEqual(N / 2_000 / 2);
    for (const a of midway) expect(a % 2_000).toBe(0);
    // Device reports were committed while the import was between its first and last slice.
    expect(Math.max(...reportsCommittedMidway)).toBeGreaterThan(0);
    expect(sent).toBeGreaterThan(0);
  });
});
