// npm run bench:retention: ingest p99 of paced signing devices without and with a prune of
// old settled reports running, and the prune's rate. Seeds BENCH_REPORTS (200,000) reports
// received 500 days ago and acknowledged by the upstream, straight into the store before the
// collector starts. Everything runs on 127.0.0.1 and stops by itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { CLI, fmt, loadFor, percentile, registerLoadDevices, reportLoad, start, stop } from './lib.mjs';

const REPORTS = Number(process.env.BENCH_REPORTS ?? 200_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const DEVICES = 32;
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
const env = { ...process.env, OUTPOST_DATA_DIR: join(dir, 'data'), OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn' };
const token = JSON.parse(execFileSync(process.execPath, [CLI, 'token', 'create', '--description', 'bench', '--uses', String(DEVICES), '--json'], { env })).secret;

const seedStart = performance.now();
{
  const db = new Database(join(dir, 'data', 'outpost.db'));
  db.pragma('journal_mode = WAL');
  const at = Date.now() - 500 * 86_400_000;
  const seed = db.prepare(
    `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
     VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const ack = db.prepare("INSERT INTO report_acks (destination, report_id, status, reason, acked_at) VALUES ('outpost', ?, 'accepted', NULL, ?)");
  const body = (i) => JSON.stringify({ reportId: `old-${i}`, seq: i, generatedAt: Math.floor(at / 1000), measurements: [{ tag: TAG, count: 1, start: Math.floor(at / 1000) - 60, end: Math.floor(at / 1000) }] });
  db.transaction(() => {
    for (let i = 0; i < REPORTS; i++) {
      const pk = Number(seed.run(`dev_old${i % 5000}`, `old-${i}`, i, at, at, `h${i}`.padEnd(64, '0'), body(i), JSON.stringify([TAG])).lastInsertRowid);
      ack.run(pk, at);
    }
  })();
  db.close();
}
console.log(`WAL checkpoints: ${process.env.OUTPOST_STORE_CHECKPOINTS ?? 'worker'} (OUTPOST_STORE_CHECKPOINTS=worker or commit)`);
console.log(`seeded ${fmt(REPORTS)} settled reports received 500 days ago in ${fmt((performance.now() - seedStart) / 1000, 1)} s`);

const outpost = await start(process.execPath, [CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
const url = `http://127.0.0.1:${outpost.match[1]}`;
const pool = new Pool(url, { connections: DEVICES, pipelining: 1 });
try {
  const load = await registerLoadDevices(pool, token, DEVICES, 'ret');
  const alone = await loadFor(pool, load, RATE, 'alone', TAG, SECONDS, { warmUp: true });

  const l = reportLoad(pool, load, RATE, 'prune', TAG);
  const t0 = performance.now();
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'reports', 'prune', '--json'], { env, maxBuffer: 1 << 20 });
  const pruneSeconds = (performance.now() - t0) / 1000;
  const during = await l.stop();
  const r = JSON.parse(stdout);
  // Alone again after the prune: a noisy neighbour's burst lands in either window about as often.
  const after = await loadFor(pool, load, RATE, 'after', TAG, SECONDS);
  const aloneLat = [...alone.latencies, ...after.latencies].sort((a, b) => a - b);

  const aloneP99 = percentile(aloneLat, 99);
  console.log(`ingest at ${fmt(RATE)} reports/s from ${DEVICES} devices: ${fmt(SECONDS)} s alone, while the prune ran, ${fmt(SECONDS)} s alone again`);
  console.log(`  alone       p99 ${fmt(aloneP99, 1)} ms  (${fmt(aloneLat.length)} reports; before ${fmt(alone.p99, 1)} ms, after ${fmt(after.p99, 1)} ms)`);
  console.log(`  with prune  p99 ${fmt(during.p99, 1)} ms  (${fmt(during.reports)} reports)  ratio ${fmt(during.p99 / aloneP99, 2)}`);
  console.log(`prune: ${fmt(r.pruned)} reports in ${r.batches} batches, ${fmt(pruneSeconds, 1)} s (${fmt(r.pruned / pruneSeconds)} reports/s), ${fmt(r.tombstones)} tombstones`);
} finally {
  await pool.close();
  await stop(outpost.proc);
  rmSync(dir, { recursive: true, force: true });
}
