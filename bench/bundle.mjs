// npm run bench:bundle: the disconnected exchange at scale. Seeds a collector database with
// 100,000 devices and 3,000,000 unacknowledged reports, then times export (at 300k and at 3M
// reports, each alone and again while devices report), bundle verify, upstream process and the
// import of the response, printing seconds, records per second, size and peak RSS of each.
// Then the jobs a running collector does while devices report: the import of the response,
// the stale evaluation of the 100,000 devices gone silent, and `events verify` over 1,000,000
// events. For every job run in the server it prints the device ingest p99 and the longest
// stall of the server's event loop as a steady probe request sees it.
// Everything runs on 127.0.0.1 under a temporary folder. BENCH_REPORTS scales it down;
// BENCH_EVENTS sets the trail's length; BENCH_LOAD_RATE the device load (reports/s, 0: flat out).
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Pool } from 'undici';
import { CLI, fmt, probeStalls, registerLoadDevices, reportLoad, start, stop } from './lib.mjs';
import { loadConfig } from '../dist/config/load.js';
import { buildServices } from '../dist/main.js';
import { createLogger } from '../dist/shared/logger.js';

const REPORTS = Number(process.env.BENCH_REPORTS ?? 3_000_000);
const DEVICES = Math.floor(Math.min(100_000, Math.max(1000, REPORTS / 30)));
const FIRST = Math.round(REPORTS / 10);
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const TAG_JSON = JSON.stringify([TAG]);

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-bundle-'));
const env = {
  OUTPOST_DATA_DIR: join(root, 'data'), OUTPOST_EXCHANGE_BUNDLE_DIR: join(root, 'bundles'), OUTPOST_UPSTREAM_DATA_DIR: join(root, 'upstream'),
  OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn',
  // The scheduled evaluation stays out of the way: the bench starts the one it times.
  OUTPOST_ALERTS_EVALUATE_CRON: '0 0 1 1 *',
};
const results = [];
const row = (step, seconds, records, extra) => {
  results.push({ step, seconds, records, ...extra });
  console.log(`${step.padEnd(28)} ${fmt(seconds, 1).padStart(6)} s  ${fmt(records / seconds).padStart(10)} records/s  ${extra.note ?? ''}`);
};

/** Runs the outpost command in its own process; returns its output, wall time and peak RSS. */
function run(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, ['--expose-gc', join(import.meta.dirname, 'rss-wrap.mjs'), CLI, ...args, '--json'], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`outpost ${args.join(' ')}: ${err}`));
      const m = /\n?MAXRSS (\d+)\s*$/.exec(out);
      resolve({ seconds: (performance.now() - t0) / 1000, json: JSON.parse(out.replace(/MAXRSS \d+\s*$/, '')), rssMb: m ? Number(m[1]) / 1024 : NaN });
    });
  });
}

// 1. Seed: devices and reports written straight into a real collector store, as ingest leaves them.
function seed(from, to) {
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: env.OUTPOST_DATA_DIR, exchange: { bundleDir: env.OUTPOST_EXCHANGE_BUNDLE_DIR } } }), { logger: createLogger('error', true) });
  const va = s.accounts.list()[0].id;
  const now = Date.now();
  const dev = s.db.prepare("INSERT OR IGNORE INTO devices (id, va_id, udi_pid, udi_serial, hostname, status, source, registered_at, last_seen_at) VALUES (?, ?, 'C9300-48P', ?, ?, 'active', 'rum', ?, ?)");
  const udi = s.db.prepare('INSERT OR IGNORE INTO device_udis (udi, device_id) VALUES (?, ?)');
  const rep = s.db.prepare("INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json) VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)");
  const use = s.db.prepare('INSERT OR REPLACE INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, ?)');
  const pend = s.db.prepare("INSERT INTO report_pending (destination, report_id, since) VALUES ('outpost', ?, ?)");
  s.db.transaction(() => {
    for (let i = 0; i < DEVICES; i++) {
      const id = `dev_bench${String(i).padStart(7, '0')}`;
      dev.run(id, va, `SN${i}`, `switch-${i}`, now, now);
      udi.run(`C9300-48P:SN${i}`, id);
    }
    for (let k = from; k < to; k++) {
      const i = k % DEVICES;
      const id = `dev_bench${String(i).padStart(7, '0')}`;
      const t = 1_790_000_000 + Math.floor(k / DEVICES) * 3600;
      const body = JSON.stringify({ reportId: `r${k}`, seq: k, generatedAt: t, measurements: [{ tag: TAG, count: 1 + (k % 4), start: t - 3600, end: t }] });
      const pk = rep.run(id, `r${k}`, k, t * 1000, now, String(k).padStart(64, '0'), body, TAG_JSON).lastInsertRowid;
      use.run(id, TAG, 1 + (k % 4), t * 1000, pk);
      pend.run(pk, now);
    }
    s.licenses.ledger.replaceAll(s.licenses.ledger.recompute());
  })();
  s.db.close();
}

let t0 = performance.now();
seed(0, FIRST);
console.log(`seeded ${fmt(DEVICES)} devices and ${fmt(FIRST)} reports in ${fmt((performance.now() - t0) / 1000, 1)} s`);

// Enrollment, as operators do it.
const req = (await run(['enroll', '--account', 'Bench'])).json;
const up = (await run(['upstream', 'init'])).json;
const added = (await run(['upstream', 'collector', 'add', req.file, '--account', 'Bench', '--fingerprint', req.fingerprint])).json;
await run(['enroll', 'confirm', added.responseFile, '--fingerprint', up.fingerprint]);
await run(['upstream', 'entitlements', 'add', '--account', 'Bench', '--va', 'Default', '--tag', TAG, '--name', 'DNA', '--quantity', '100000']);

// 2. Export, in the server: once alone, then while devices keep reporting at a paced rate
// (BENCH_LOAD_RATE reports/s; 0 sends as fast as 16 connections can, which on a 2-core
// machine measures the contention for cores between the load generator, ingest and the export).
const LOAD_RATE = Number(process.env.BENCH_LOAD_RATE ?? 500);

/**
 * Starts the server, optionally with devices reporting at LOAD_RATE, runs `job(url)` and
 * returns what it returned with its time, the server's RSS, the ingest p99 and the longest
 * event-loop stall (a probe request every 5 ms) while it ran.
 */
async function inServer(label, withLoad, job, before = async () => {}) {
  const server = await start(process.execPath, [CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
  const url = `http://127.0.0.1:${server.match[1]}`;
  const pool = new Pool(url, { connections: 16 });
  let load = null;
  if (withLoad) {
    const token = (await run(['token', 'create', '--description', 'load', '--uses', '16'])).json.secret;
    load = reportLoad(pool, await registerLoadDevices(pool, token, 16, label), LOAD_RATE, label, TAG);
  }
  const pid = server.proc.pid;
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  await new Promise((r) => setTimeout(r, 1000));
  await before();
  const rssBefore = rss();
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  const probe = probeStalls(url);
  load?.reset();
  const t0 = performance.now();
  const out = await job(url);
  const seconds = (performance.now() - t0) / 1000;
  const stalls = await probe.stop();
  const ingest = load ? await load.stop() : { p99: NaN, reports: 0 };
  clearInterval(sampler);
  await pool.close();
  await stop(server.proc);
  return { out, seconds, rssBefore, peakRss: peak, ingestP99: ingest.p99, ingestRequests: ingest.reports, stallMs: stalls.longestStallMs };
}

async function exportInServer(label, withLoad) {
  const r = await inServer(label, withLoad, () => run(['export', '--period', '2026-11']));
  return { ...r.out.json, ...r };
}

/** An operator API call over loopback, as the job a bench step times in the server. */
async function call(url, method, path) {
  const pool = new Pool(url, { connections: 1 });
  const r = await pool.request({ path, method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
  const body = JSON.parse(await r.body.text());
  await pool.close();
  if (r.statusCode !== 200) throw new Error(`${method} ${path}: ${r.statusCode} ${JSON.stringify(body)}`);
  return body;
}

const during = (r) => `ingest p99 ${fmt(r.ingestP99, 1)} ms over ${fmt(r.ingestRequests)} reports, longest stall ${fmt(r.stallMs)} ms`;

const loadText = LOAD_RATE > 0 ? `${fmt(LOAD_RATE)} reports/s` : 'as fast as 16 connections go';
async function exportBoth(label) {
  const alone = await exportInServer(label, false);
  row(`export ${fmt(alone.reports)} reports`, alone.seconds, alone.reports, { note: `${fmt(alone.bytes / 1e6, 1)} MB bundle, server RSS ${fmt(alone.rssBefore)} MB before, peak ${fmt(alone.peakRss)} MB, longest stall ${fmt(alone.stallMs)} ms` });
  const loaded = await exportInServer(label, true);
  row(`  under load (${loadText})`, loaded.seconds, loaded.reports, { note: `${during(loaded)}, server RSS ${fmt(loaded.rssBefore)} MB before, peak ${fmt(loaded.peakRss)} MB` });
  return { alone, loaded };
}

// What the machine gives with no job at all: the floor under every figure below.
const idle = await inServer('idle', true, () => new Promise((r) => setTimeout(r, 3000)));
console.log(`${'baseline, no job'.padEnd(28)} ${fmt(idle.seconds, 1).padStart(6)} s  ${''.padStart(10)}            ${during(idle)}`);

const small = await exportBoth('a');

t0 = performance.now();
seed(FIRST, REPORTS);
console.log(`seeded up to ${fmt(REPORTS)} reports in ${fmt((performance.now() - t0) / 1000, 1)} s`);
const big = (await exportBoth('b')).alone;

// 3. Verify (the security team's check), 4. upstream process, 5. import of the response.
const keyFile = join(root, 'collector.pub');
writeFileSync(keyFile, (await run(['keys'])).json.collector.publicKey);
const ver = await run(['bundle', 'verify', big.file, '--key', keyFile]);
row('bundle verify', ver.seconds, big.reports, { note: `peak RSS ${fmt(ver.rssMb)} MB` });
const proc = await run(['upstream', 'process', big.file]);
row('upstream process', proc.seconds, big.reports, { note: `peak RSS ${fmt(proc.rssMb)} MB, response ${fmt(statSync(proc.json.responseFile).size / 1e6, 1)} MB, ${fmt(proc.json.reports.accepted)} accepted` });
const imp = await inServer('imp', true, () => run(['import', proc.json.responseFile]));
row('import response, in server', imp.seconds, imp.out.json.acks.accepted, { note: `${fmt(imp.out.json.acks.accepted)} ACKs applied; ${during(imp)}` });

// 6. Stale evaluation: every seeded device goes silent past the stale age 15 s after the server
// starts, so that the evaluation the server runs at start finds none and the timed one all.
const STALE_AGE = 90 * 86_400_000;
const crossing = Date.now() + 15_000;
{
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: env.OUTPOST_DATA_DIR, exchange: { bundleDir: env.OUTPOST_EXCHANGE_BUNDLE_DIR } } }), { logger: createLogger('error', true) });
  s.db.prepare("UPDATE devices SET last_seen_at = ? WHERE id LIKE 'dev_bench%'").run(crossing - STALE_AGE);
  s.db.close();
}
const untilCrossed = () => new Promise((r) => setTimeout(r, Math.max(0, crossing + 1000 - Date.now())));
const stale = await inServer('stale', true, (url) => call(url, 'POST', '/api/v1/alerts/evaluate'), untilCrossed);
row('stale evaluation, in server', stale.seconds, DEVICES, { note: `${fmt(stale.out.items.filter((a) => a.kind === 'device_stale').reduce((n, a) => n + a.details.devices, 0))} devices staled; ${during(stale)}` });

// 7. events verify over a long trail.
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
{
  t0 = performance.now();
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: env.OUTPOST_DATA_DIR, exchange: { bundleDir: env.OUTPOST_EXCHANGE_BUNDLE_DIR } } }), { logger: createLogger('error', true) });
  const have = s.db.prepare('SELECT count(*) FROM events').pluck().get();
  s.db.transaction(() => {
    for (let i = have; i < EVENTS; i++) s.events.append('bench.filler', 'bench', `s${i}`, null, { i });
  })();
  s.db.close();
  console.log(`seeded the trail to ${fmt(EVENTS)} events in ${fmt((performance.now() - t0) / 1000, 1)} s`);
}
const ev = await inServer('events', true, (url) => call(url, 'GET', '/api/v1/events/verify'));
if (!ev.out.intact) throw new Error('the seeded trail does not verify');
row('events verify, in server', ev.seconds, ev.out.head.id, { note: during(ev) });

console.log('');
console.log(`export, server peak RSS at ${fmt(small.alone.reports)} reports: ${fmt(small.alone.peakRss)} MB; at ${fmt(big.reports)}: ${fmt(big.peakRss)} MB`);
rmSync(root, { recursive: true, force: true });
