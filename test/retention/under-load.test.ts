import { afterEach, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';
import type { DeviceReport } from '../../src/usage/report-schema.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Settled filler, so that the prune runs in many batches: its window must hold many device answers. */
const SEEDED = 4_000;
const BATCH = 100;
const DEVICES = 12;
/** Old reports each device sent for real, so their replays go through ingest's tombstone lookup. */
const OLD_PER_DEVICE = 6;
/** Rounds each device reports at least, and at most (a prune that never starts must not hang the test). */
const MIN_ROUNDS = 4;
const MAX_ROUNDS = 120;

interface Answer {
  device: SimulatedDevice;
  report: DeviceReport;
  replay: boolean;
  status: number;
  result: string | undefined;
  at: number;
}

it('retention under load: devices keep reporting through the HTTP app while thousands of settled reports are pruned; every 2xx report is stored once, replays are answered from tombstones, compliance holds', async () => {
  const clock = new ManualClock(Date.now());
  h = await startHarness({ clock, config: { retention: { batchSize: BATCH } } });
  const db = h.services.db;
  const devices: SimulatedDevice[] = [];
  for (let i = 0; i < DEVICES; i++) devices.push(await h.registered());

  // Real old reports first (the lowest ids: the prune reaches them in its first batches, so the
  // replays sent under load meet tombstones), then the filler.
  const t = Math.floor(clock.now() / 1000);
  const old = new Map<SimulatedDevice, DeviceReport[]>();
  for (const d of devices) {
    const rs = Array.from({ length: OLD_PER_DEVICE }, (_, j) => d.report(TAG, j + 1, t - 7200 + j * 60));
    const res = await d.sendBatch(rs);
    expect(res.status).toBe(200);
    old.set(d, rs);
  }
  const seed = db.prepare(
    `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
     VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const at = clock.now();
  db.transaction(() => {
    for (let i = 0; i < SEEDED; i++) seed.run(`dev_old${i % 50}`, `old-${i}`, i, at, at, `hash-${i}`, JSON.stringify({ i }), JSON.stringify([TAG]));
    // What an upstream's ACK does: every report acknowledged, none waiting.
    db.prepare("INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at) SELECT destination, report_id, 'accepted', NULL, ? FROM report_pending").run(at);
    db.prepare('DELETE FROM report_pending').run();
    db.prepare("INSERT INTO report_acks (destination, report_id, status, reason, acked_at) SELECT 'outpost', id, 'accepted', NULL, ? FROM reports WHERE report_id LIKE 'old-%'").run(at);
  })();
  const hashes = new Map<string, string>();
  for (const r of db.prepare("SELECT device_id, report_id, content_hash FROM reports WHERE report_id NOT LIKE 'old-%'").all() as { device_id: string; report_id: string; content_hash: string }[]) {
    hashes.set(`${r.device_id}/${r.report_id}`, r.content_hash);
  }
  expect(hashes.size).toBe(DEVICES * OLD_PER_DEVICE);
  clock.advance(401 * DAY);

  // The prune's own start and end, taken where the route calls it.
  const pruner = h.services.retention;
  const window = { start: NaN, end: NaN };
  const prune = pruner.prune.bind(pruner);
  pruner.prune = async (o) => {
    window.start = performance.now();
    try {
      return await prune(o);
    } finally {
      window.end = performance.now();
    }
  };
  // supertest sends nothing until it is awaited: `.then` starts the request now.
  const pruning = h.api.post('/api/v1/reports/prune').send({}).then((r) => r);
  const done = () => Number.isFinite(window.end);

  const answers: Answer[] = [];
  const t2 = Math.floor(clock.now() / 1000) - 3000;
  await Promise.all(devices.map(async (d) => {
    const mine = old.get(d)!;
    for (let k = 0; k < MAX_ROUNDS && (k < MIN_ROUNDS || !done()); k++) {
      // A new report, its period ending later than the last: each one is the device's current count.
      const r = d.report(TAG, k + 1, t2 + k);
      const res = await d.sendReport(r);
      answers.push({ device: d, report: r, replay: false, status: res.status, result: res.body?.status, at: performance.now() });
      if (k % 2 === 1) {
        const again = mine[(k >> 1) % (OLD_PER_DEVICE - 1)]!;
        const rep = await d.sendReport(again);
        answers.push({ device: d, report: again, replay: true, status: rep.status, result: rep.body?.status, at: performance.now() });
      }
    }
  }));
  const res = await pruning;
  expect(res.status).toBe(200);
  const run = res.body;

  // The prune ran while devices were answered: most answers came inside its window.
  const inside = answers.filter((a) => a.at >= window.start && a.at <= window.end).length;
  expect({ inside, of: answers.length, share: inside / answers.length >= 0.5 }).toMatchObject({ share: true });
  expect(inside).toBeGreaterThanOrEqual(DEVICES * MIN_ROUNDS);

  const fresh = answers.filter((a) => !a.replay);
  const replays = answers.filter((a) => a.replay);
  expect(fresh.filter((a) => a.status !== 200 || a.result !== 'accepted')).toEqual([]);
  // A replay is a duplicate whether its row or its tombstone answered.
  expect(replays.length).toBeGreaterThan(0);
  expect(replays.filter((a) => a.status !== 200 || a.result !== 'duplicate')).toEqual([]);

  // Every accepted report is stored exactly once, waits for the upstream, and has no tombstone.
  const ids = db.prepare("SELECT device_id || '/' || report_id FROM reports WHERE report_id NOT LIKE 'old-%'").pluck().all() as string[];
  const counted = new Map<string, number>();
  for (const id of ids) counted.set(id, (counted.get(id) ?? 0) + 1);
  for (const a of fresh) expect(counted.get(`${a.device.deviceId}/${a.report.reportId}`)).toBe(1);
  expect(h.count("SELECT count(*) FROM report_pending WHERE destination = 'outpost'")).toBe(fresh.length);
  expect(h.count("SELECT count(*) FROM report_tombstones t JOIN report_pending p ON p.report_id = t.report_pk")).toBe(0);
  // Each real old report is a row or a tombstone with its content hash: never both, never neither.
  for (const [key, hash] of hashes) {
    const [deviceId, reportId] = key.split('/') as [string, string];
    const row = h.count("SELECT count(*) FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?", deviceId, reportId);
    const tomb = h.count("SELECT count(*) FROM report_tombstones WHERE device_id = ? AND source = 'device' AND report_id = ? AND content_hash = ?", deviceId, reportId, hash);
    expect({ key, sum: row + tomb }).toEqual({ key, sum: 1 });
  }

  expect(run).toMatchObject({ dryRun: false, pruned: expect.any(Number) });
  expect(run.pruned).toBeGreaterThanOrEqual(SEEDED + DEVICES * (OLD_PER_DEVICE - 1));
  expect(run.batches).toBeGreaterThanOrEqual(SEEDED / BATCH);
  const kept = h.count("SELECT count(*) FROM reports WHERE report_id LIKE 'old-%'");
  const tomb = h.count("SELECT count(*) FROM report_tombstones t WHERE t.report_id LIKE 'old-%' AND t.content_hash = 'hash-' || substr(t.report_id, 5)");
  expect(kept + tomb).toBe(SEEDED);
  expect(h.count("SELECT count(*) FROM events WHERE type = 'reports.pruned'")).toBe(1);

  // After the prune, every replaced old report is answered as a duplicate from its tombstone.
  for (const d of devices) {
    const replaced = old.get(d)!.slice(0, OLD_PER_DEVICE - 1);
    for (const r of replaced) {
      expect(h.count("SELECT count(*) FROM reports WHERE device_id = ? AND report_id = ?", d.deviceId, r.reportId)).toBe(0);
      expect(h.count("SELECT count(*) FROM report_tombstones WHERE device_id = ? AND report_id = ?", d.deviceId, r.reportId)).toBe(1);
    }
    const again = await d.sendBatch(replaced);
    expect(again.status).toBe(200);
    expect(again.body.results.map((x: { status: string }) => x.status)).toEqual(replaced.map(() => 'duplicate'));
  }

  // Compliance: in use is each device's last count, and a rebuild from per-device usage finds no drift.
  const last = new Map<SimulatedDevice, number>();
  for (const a of fresh) last.set(a.device, Math.max(last.get(a.device) ?? 0, a.report.measurements[0]!.count));
  const expected = [...last.values()].reduce((s, n) => s + n, 0);
  const inUse = () => {
    const va = h!.services.licenses.complianceAll().find((v) => v.vaId === h!.defaultVa)!;
    return va.tags.find((x) => x.tag === TAG);
  };
  expect(inUse()).toMatchObject({ inUse: expected, devices: DEVICES });
  const verify = (await h.api.post('/api/v1/compliance/verify').expect(200)).body;
  expect(verify.drift).toEqual([]);
  expect(inUse()).toMatchObject({ inUse: expected, devices: DEVICES });
});
