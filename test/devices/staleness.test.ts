import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';

let h: Harness;
let clock: ManualClock;
beforeEach(async () => {
  clock = new ManualClock(Date.now());
  h = await startHarness({ clock });
});
afterEach(() => h.close());

/**
 * Devices written straight into the store with their usage, counters as ingest keeps them.
 * `ageDays(i)` says how long device i has been silent; `status(i)` its status.
 */
function seed(n: number, vaOf: (i: number) => string, ageDays: (i: number) => number, status: (i: number) => string = () => 'active'): void {
  const db = h.services.db;
  const now = clock.now();
  const dev = db.prepare(
    "INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, status, source, registered_at, last_seen_at) VALUES (?, ?, 'C9300-48P', ?, '', ?, 'rum', ?, ?)",
  );
  const use = db.prepare('INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, 0)');
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = `dev_seed${String(i).padStart(6, '0')}`;
      const seen = now - ageDays(i) * DAY;
      dev.run(id, vaOf(i), `SEED${i}`, status(i), seen - DAY, seen);
      use.run(id, TAG, 1 + (i % 5), seen);
      if (i % 3 === 0) use.run(id, TAG2, 2 + (i % 2), seen);
    }
    h.services.licenses.ledger.replaceAll(h.services.licenses.ledger.recompute());
  })();
}

const count = (sql: string, ...args: unknown[]) => h.count(sql, ...args);
const openAlerts = (kind: string) =>
  h.services.db.prepare('SELECT subject, details FROM alerts WHERE kind = ? AND cleared_at IS NULL ORDER BY subject').all(kind) as { subject: string; details: string }[];

describe('stale evaluation over many devices', () => {
  it('then each device silent past the stale age is staled once and releases exactly its usage, and alerts are one per VA', async () => {
    const other = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id as string;
    const vaOf = (i: number) => (i % 4 === 0 ? other : h.defaultVa);
    // Every 7th device is past the stale age; every 5th is silent but not yet stale; some were stale already.
    seed(30_000, vaOf, (i) => (i % 7 === 0 ? 95 : i % 5 === 0 ? 40 : 1), (i) => (i % 7 === 0 && i % 11 === 0 ? 'stale' : 'active'));
    const expected = count("SELECT count(*) FROM devices WHERE status = 'active' AND last_seen_at < ?", clock.now() - 90 * DAY);
    const before = count("SELECT count(*) FROM events WHERE type = 'device.stale'");

    const r = await h.services.devices.evaluate();
    expect(r.staled).toBe(expected);
    expect(count("SELECT count(*) FROM events WHERE type = 'device.stale'") - before).toBe(expected);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
    const stored = h.services.licenses.ledger.stored();
    expect(stored).toEqual(h.services.licenses.ledger.recompute());

    // Once: a second evaluation finds nothing more, and the counters stay.
    expect((await h.services.devices.evaluate()).staled).toBe(0);
    expect(h.services.licenses.ledger.stored()).toEqual(stored);

    const stale = openAlerts('device_stale');
    expect(stale.map((a) => a.subject).sort()).toEqual([h.defaultVa, other].sort());
    const staleIn = (va: string) => count("SELECT count(*) FROM devices WHERE status = 'stale' AND va_id = ?", va);
    for (const a of stale) expect(JSON.parse(a.details)).toMatchObject({ devices: staleIn(a.subject) });
    const silent = openAlerts('device_silent');
    const silentIn = (va: string) => count("SELECT count(*) FROM devices WHERE status = 'active' AND va_id = ? AND last_seen_at < ?", va, clock.now() - 30 * DAY);
    expect(silent).toHaveLength(2);
    for (const a of silent) expect(JSON.parse(a.details)).toMatchObject({ devices: silentIn(a.subject) });
  });

  it('then open per-device alerts left by an earlier version are cleared', async () => {
    seed(100, () => h.defaultVa, () => 95);
    const ins = h.services.db.prepare("INSERT INTO alerts (kind, subject, severity, message, details, first_seen_at, last_seen_at) VALUES ('device_stale', ?, 'warning', 'old', '{}', 0, 0)");
    h.services.db.transaction(() => {
      for (let i = 0; i < 12_000; i++) ins.run(`dev_old${i}`);
    })();
    await h.services.devices.evaluate();
    expect(openAlerts('device_stale').map((a) => a.subject)).toEqual([h.defaultVa]);
  });

  it('then 50,000 devices are staled in slices with the event loop free between them, and device reports are answered meanwhile', async () => {
    const N = 50_000;
    seed(N, () => h.defaultVa, () => 95);
    const d = await h.registered();
    const staleNow = h.services.db.prepare("SELECT count(*) FROM devices WHERE status = 'stale'").pluck();
    const mine = h.services.db.prepare('SELECT count(*) FROM reports WHERE device_id = ?').pluck();
    const seen: number[] = [];
    const reportsMidway: number[] = [];
    let running = true;
    const sample = () => {
      const n = staleNow.get() as number;
      seen.push(n);
      if (n > 0 && n < N) reportsMidway.push(mine.get(d.deviceId) as number);
      if (running) setImmediate(sample);
      else sampled();
    };
    let sampled!: () => void;
    const samplerDone = new Promise<void>((r) => (sampled = r));
    const job = h.services.devices.evaluate().finally(() => (running = false));
    setImmediate(sample);
    const load = (async () => {
      while (running) expect((await d.sendReport(d.report(TAG, 1))).status).toBe(200);
    })();
    expect((await job).staled).toBe(N);
    await load;
    await samplerDone; // its last read is done before the store closes
    const midway = [...new Set(seen.filter((n) => n > 0 && n < N))];
    expect(midway.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...reportsMidway)).toBeGreaterThan(0);
    expect(count("SELECT count(*) FROM devices WHERE status = 'stale'")).toBe(N);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
    // The device that kept reporting is neither stale nor silent.
    expect(openAlerts('device_silent')).toEqual([]);
  });
});
