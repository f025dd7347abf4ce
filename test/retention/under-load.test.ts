import { afterEach, expect, it } from 'vitest';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const SEEDED = 6000;

it('retention under load: devices keep reporting through the HTTP app while thousands of settled reports are pruned; every 2xx report is stored, nothing old is lost without its tombstone', async () => {
  const clock = new ManualClock(Date.now());
  h = await startHarness({ clock, config: { retention: { batchSize: 250 } } });
  const db = h.services.db;
  // Old reports, acknowledged by the upstream, of devices long gone from the ledger.
  const seed = db.prepare(
    `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
     VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const ack = db.prepare("INSERT INTO report_acks (destination, report_id, status, reason, acked_at) VALUES ('outpost', ?, 'accepted', NULL, ?)");
  const at = clock.now();
  db.transaction(() => {
    for (let i = 0; i < SEEDED; i++) {
      const pk = Number(seed.run(`dev_old${i % 50}`, `old-${i}`, i, at, at, `hash-${i}`, JSON.stringify({ i }), JSON.stringify([TAG])).lastInsertRowid);
      ack.run(pk, at);
    }
  })();
  const devices: SimulatedDevice[] = [];
  for (let i = 0; i < 12; i++) devices.push(await h.registered());
  clock.advance(401 * DAY);

  const pruning = h.api.post('/api/v1/reports/prune').send({});
  const sent: { device: SimulatedDevice; reportId: string; status: number }[] = [];
  await Promise.all(devices.map(async (d) => {
    for (let k = 0; k < 15; k++) {
      const r = d.report(TAG, k + 1);
      const res = await d.sendReport(r);
      sent.push({ device: d, reportId: r.reportId, status: res.status });
    }
  }));
  const run = (await pruning).body;

  expect(sent.every((s) => s.status === 200)).toBe(true);
  const stored = db.prepare("SELECT count(*) FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?").pluck();
  expect(sent.filter((s) => stored.get(s.device.deviceId, s.reportId) !== 1)).toEqual([]);
  expect(run).toMatchObject({ pruned: SEEDED, device: SEEDED, tombstones: SEEDED });
  expect(run.batches).toBeGreaterThanOrEqual(SEEDED / 250);
  // Each seeded report is either still a row or a tombstone with its hash: never neither.
  const kept = h.count("SELECT count(*) FROM reports WHERE report_id LIKE 'old-%'");
  const tomb = h.count("SELECT count(*) FROM report_tombstones t WHERE t.report_id LIKE 'old-%' AND t.content_hash = 'hash-' || substr(t.report_id, 5)");
  expect(kept + tomb).toBe(SEEDED);
  expect(h.count("SELECT count(*) FROM events WHERE type = 'reports.pruned'")).toBe(1);
  // The new reports all wait for the upstream: nothing the prune did touched them.
  expect(h.count("SELECT count(*) FROM report_pending WHERE destination = 'outpost'")).toBe(sent.length);
});
