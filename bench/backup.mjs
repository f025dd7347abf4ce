// npm run bench:backup: ingest p99 of paced signing devices without and with an online backup
// running (a backup through the running collector's operator API), and the backup's time, size and
// rate. Seeds BENCH_REPORTS (500,000) reports straight into the store before the collector starts,
// so the copy has a realistic size. Everything runs on 127.0.0.1 and stops by itself.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { Pool, request } from 'undici';
import { CLI, fmt, loadFor, registerLoadDevices, reportLoad, start, stop } from './lib.mjs';

const REPORTS = Number(process.env.BENCH_REPORTS ?? 500_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const DEVICES = 32;
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
const env = { ...process.env, OUTPOST_DATA_DIR: join(dir, 'data'), OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn', OUTPOST_BACKUP_ENABLED: 'false', OUTPOST_BACKUP_KEEP: '1' };
const token = JSON.parse(execFileSync(process.execPath, [CLI, 'token', 'create', '--description', 'bench', '--uses', String(DEVICES), '--json'], { env })).secret;

const seedStart = performance.now();
{
  const db = new Database(join(dir, 'data', 'outpost.db'));
  db.pragma('journal_mode = WAL');
  const at = Date.now() - 30 * 86_400_000;
  const seed = db.prepare(
    `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
     VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const body = (i) => JSON.stringify({ reportId: `old-${i}`, seq: i, generatedAt: Math.floor(at / 1000), measurements: [{ tag: TAG, count: 1, start: Math.floor(at / 1000) - 60, end: Math.floor(at / 1000) }] });
  db.transaction(() => {
    for (let i = 0; i < REPORTS; i++) seed.run(`dev_old${i % 5000}`, `old-${i}`, i, at, at, `h${i}`.padEnd(64, '0'), body(i), JSON.stringify([TAG]));
  })();
  db.close();
}
const storeBytes = statSync(join(dir, 'data', 'outpost.db')).size;
console.log(`seeded ${fmt(REPORTS)} reports (${fmt(storeBytes / 1048576, 1)} MB store) in ${fmt((performance.now() - seedStart) / 1000, 1)} s`);

const outpost = await start(process.execPath, [CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
const url = `http://127.0.0.1:${outpost.match[1]}`;
const pool = new Pool(url, { connections: DEVICES, pipelining: 1 });
try {
  const load = await registerLoadDevices(pool, token, DEVICES, 'bak');
  const alone = await loadFor(pool, load, RATE, 'alone', TAG, SECONDS, { warmUp: true });

  // Through the operator API (loopback, before the first user): a CLI process starting on the
  // same two cores would be measured too. The backup goes into backup.dir.
  // A backup each second for as long as the load ran alone, so both figures cover the same span.
  const l = reportLoad(pool, load, RATE, 'backup', TAG);
  const t0 = performance.now();
  let r;
  let backups = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    const res = await request(`${url}/api/v1/backups`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    r = await res.body.json();
    if (res.statusCode !== 201) throw new Error(`backup: ${res.statusCode} ${JSON.stringify(r)}`);
    backups++;
    // Backups into backup.dir are named to the second.
    await new Promise((res) => setTimeout(res, 1000 - (Date.now() % 1000) + 5));
  }
  const seconds = r.durationMs / 1000;
  const during = await l.stop();

  console.log(`ingest at ${fmt(RATE)} reports/s from ${DEVICES} devices, ${fmt(SECONDS)} s alone, then ${fmt(SECONDS)} s of backups, one a second (${backups})`);
  console.log(`  alone        p99 ${fmt(alone.p99, 1)} ms  (${fmt(alone.reports)} reports)`);
  console.log(`  with backup  p99 ${fmt(during.p99, 1)} ms  (${fmt(during.reports)} reports)  ratio ${fmt(during.p99 / alone.p99, 2)}`);
  console.log(`backup: ${fmt(r.bytes / 1048576, 1)} MB, ${fmt(r.pages)} pages in ${fmt(seconds, 1)} s (the last one), ${fmt(r.bytes / 1048576 / seconds, 1)} MB/s`);
} finally {
  await pool.close();
  await stop(outpost.proc);
  rmSync(dir, { recursive: true, force: true });
}
