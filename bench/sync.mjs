// npm run bench:sync: the connected exchange at scale, every process on 127.0.0.1 under a
// temporary folder. Collector stores are seeded straight into SQLite, as ingest leaves them;
// each collector is enrolled with the upstream (`outpost upstream serve`, its own process)
// through the upstream's admin socket, then runs as `outpost serve` in connected mode.
// 1. 20 collectors of 5,000 devices (30 reports each) sync at once to one upstream: wall time,
//    the upstream's peak RSS, its totals against what was seeded, nothing left pending.
// 2. A collector holding 3,000,000 unacknowledged reports drains them: time, parts, peak RSS of
//    both sides, device ingest p99 while it drains (paced load, BENCH_LOAD_RATE reports/s).
// 3. An hourly sync of a collector holding 1,000,000 acknowledged reports and 10,000 new ones:
//    bytes through a counting TCP pass-through between the two, and its time.
// BENCH_SCALE scales every report count (0.1 for a quick run); BENCH_SCENARIOS=1,3 runs some;
// BENCH_COLLECTORS sets the collectors of scenario 1; BENCH_UPSTREAM_NICE the upstream's nice value.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { CLI, fmt, peakRssMb, percentile, registerLoadDevices, start, stop, timedReportLoad } from './lib.mjs';
import { loadConfig } from '../dist/config/load.js';
import { buildServices } from '../dist/main.js';
import { createLogger } from '../dist/shared/logger.js';
import { adminCall } from '../dist/upstream/server/admin-client.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? '1,2,3').split(',').map(Number);
const COLLECTORS = Number(process.env.BENCH_COLLECTORS ?? 20);
const LOAD_RATE = Number(process.env.BENCH_LOAD_RATE ?? 500);
const PER_DEVICE = 30;
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const TAG_JSON = JSON.stringify([TAG]);
const NEVER = '0 0 1 1 *'; // schedules stay out of the way: the bench starts what it times

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-sync-'));
const children = new Set();
// Bounded in time: a hung step ends the bench rather than the machine's patience.
const guard = setTimeout(() => {
  console.error('bench:sync took too long; stopping');
  for (const p of children) p.kill('SIGKILL');
  process.exit(2);
}, Number(process.env.BENCH_TIMEOUT_SECONDS ?? 1800) * 1000);
guard.unref();
process.on('exit', () => {
  for (const p of children) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const sec = (t0) => (performance.now() - t0) / 1000;
const quiet = createLogger('error', true);
const servicesAt = (dataDir) =>
  buildServices(loadConfig({ env: {}, overrides: { dataDir, exchange: { bundleDir: join(dataDir, 'bundles') } } }), { logger: quiet });

/**
 * Devices and reports written straight into a collector store, as ingest leaves them. Report
 * k belongs to device k % devices and to hour k / devices (in the past, so nothing is future-dated).
 */
function seed(dataDir, { devices, from, to, pending = true, serial = 'SN' }) {
  const s = servicesAt(dataDir);
  const va = s.accounts.list()[0].id;
  const now = Date.now();
  const base = Math.floor(now / 3_600_000) * 3600 - 48 * 3600;
  const dev = s.db.prepare("INSERT OR IGNORE INTO devices (id, va_id, udi_pid, udi_serial, hostname, status, source, registered_at, last_seen_at) VALUES (?, ?, 'C9300-48P', ?, ?, 'active', 'rum', ?, ?)");
  const udi = s.db.prepare('INSERT OR IGNORE INTO device_udis (udi, device_id) VALUES (?, ?)');
  const rep = s.db.prepare("INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json) VALUES (?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)");
  const use = s.db.prepare('INSERT OR REPLACE INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, ?)');
  const pend = s.db.prepare("INSERT INTO report_pending (destination, report_id, since) VALUES ('outpost', ?, ?)");
  s.db.transaction(() => {
    for (let i = 0; i < devices; i++) {
      const id = `dev_bench${String(i).padStart(7, '0')}`;
      dev.run(id, va, `${serial}${i}`, `switch-${i}`, now, now);
      udi.run(`C9300-48P:${serial}${i}`, id);
    }
    for (let k = from; k < to; k++) {
      const i = k % devices;
      const id = `dev_bench${String(i).padStart(7, '0')}`;
      const t = base + Math.floor(k / devices) * 3600;
      const body = JSON.stringify({ reportId: `r${k}`, seq: k, generatedAt: t, measurements: [{ tag: TAG, count: 1 + (k % 4), start: t - 3600, end: t }] });
      const pk = rep.run(id, `r${k}`, k, t * 1000, now, String(k).padStart(64, '0'), body, TAG_JSON).lastInsertRowid;
      use.run(id, TAG, 1 + (k % 4), t * 1000, pk);
      if (pending) pend.run(pk, now);
    }
    s.licenses.ledger.replaceAll(s.licenses.ledger.recompute());
  })();
  s.db.close();
}

/** `outpost upstream serve` in its own process, on a free loopback port. */
async function serveUpstream(dir) {
  // BENCH_UPSTREAM_NICE runs it at a lower CPU priority: on a small machine the upstream's work
  // otherwise takes the cores the collector's devices need, which a remote upstream would not.
  const nice = process.env.BENCH_UPSTREAM_NICE;
  const [cmd, ...pre] = nice ? ['nice', '-n', nice, process.execPath] : [process.execPath];
  const { proc, match } = await start(cmd, [...pre, CLI, 'upstream', 'serve', '--dir', dir], { OUTPOST_UPSTREAM_PORT: '0', OUTPOST_UPSTREAM_HOST: '127.0.0.1', OUTPOST_LOG_LEVEL: 'warn' }, /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m);
  children.add(proc);
  const socket = join(dir, 'upstream.sock');
  const id = await adminCall(socket, 'identity', {});
  return { proc, url: match[1], port: Number(match[2]), socket, fingerprint: id.fingerprint, dir };
}

/** Enrolls the collector of `dataDir` (not running) with the running upstream, under its own account, and gives that account the bench's tag. */
async function enroll(dataDir, up, account) {
  const s = servicesAt(dataDir);
  try {
    const req = await s.exchange.enrollment.request(account, 'bench');
    const added = await adminCall(up.socket, 'collectorAdd', { file: req.file, account, fingerprint: req.fingerprint });
    await s.exchange.enrollment.trust(added.responseFile, up.fingerprint, 'bench');
  } finally {
    s.db.close();
  }
  await adminCall(up.socket, 'entitlementAdd', { account, va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 10_000_000, startsAt: 0, endsAt: null });
}

const collectorEnv = (dataDir, upstreamUrl) => ({
  OUTPOST_DATA_DIR: dataDir, OUTPOST_EXCHANGE_BUNDLE_DIR: join(dataDir, 'bundles'), OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'info',
  OUTPOST_ALERTS_EVALUATE_CRON: NEVER, OUTPOST_EXCHANGE_SYNC_CRON: NEVER,
  OUTPOST_EXCHANGE_MODE: 'connected', OUTPOST_EXCHANGE_CONNECTION_URL: upstreamUrl,
});

/** `outpost serve` in connected mode, with an operator pool on its port. */
async function serveCollector(dataDir, upstreamUrl) {
  const env = collectorEnv(dataDir, upstreamUrl);
  const { proc, match } = await start(process.execPath, [CLI, 'serve'], env, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
  children.add(proc);
  const url = `http://127.0.0.1:${match[1]}`;
  const pool = new Pool(url, { connections: 4 });
  const call = async (method, path, body) => {
    const r = await pool.request({ path, method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}), headersTimeout: 0, bodyTimeout: 0 });
    const json = JSON.parse(await r.body.text());
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: ${r.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    proc, url, pool, env, call,
    async close() {
      await pool.close();
      await stop(proc);
      children.delete(proc);
    },
  };
}

/** Runs an outpost CLI command (acting on the running collector over its socket); returns its JSON. */
function cli(env, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args, '--json'], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`outpost ${args.join(' ')}: ${err}`))));
  });
}

/**
 * Starts a sync and polls its status until it ends; returns the run's result, the time each
 * step took and the collector's RSS in each (as the polls saw them, to the poll's resolution).
 * With `wait`, the time is that of one `POST /exchange/sync {wait: true}`, the polls only
 * telling the steps apart.
 */
async function syncAndWait(c, { pollMs = 250, deadlineS = 900, wait = false } = {}) {
  const t0 = performance.now();
  let answered = null;
  const posted = c.call('POST', '/api/v1/exchange/sync', { wait }).then((r) => {
    answered = { r, at: performance.now() };
    return r;
  });
  if (!wait && !(await posted).started) throw new Error('a sync was already running');
  const steps = {};
  const rssBySteps = {};
  const timeline = [{ step: 'hello', at: t0 }];
  let last = timeline[0];
  for (;;) {
    await Promise.race([new Promise((r) => setTimeout(r, pollMs)), wait ? posted : new Promise(() => {})]);
    const s = await c.call('GET', '/api/v1/exchange/status');
    const now = wait && answered ? answered.at : performance.now();
    const step = s.running ? s.progress?.step ?? 'hello' : 'done';
    if (c.proc.exitCode === null) {
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${c.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      rssBySteps[step] = Math.max(rssBySteps[step] ?? 0, rss);
    }
    if (step !== last.step) {
      steps[last.step] = (steps[last.step] ?? 0) + (now - last.at) / 1000;
      last = { step, at: now };
      timeline.push(last);
    }
    if (!s.running && s.lastRun && (!wait || answered)) {
      return { seconds: ((answered && wait ? answered.at : performance.now()) - t0) / 1000, result: wait ? answered.r.result : s.lastRun, steps, timeline, rssBySteps, status: s };
    }
    if (sec(t0) > deadlineS) throw new Error(`the sync did not end within ${deadlineS} s: ${JSON.stringify(s.progress)}`);
  }
}

const p99 = (xs) => percentile([...xs].sort((a, b) => a - b), 99);

/** The ingest p99 and worst latency while the sync was in each step. */
function latencyBySteps(lat, timeline) {
  const by = {};
  for (const { due, ms } of lat) {
    let step = 'after';
    for (let i = timeline.length - 1; i >= 0; i--) if (timeline[i].at <= due) { step = timeline[i].step; break; }
    (by[step] ??= []).push(ms);
  }
  return Object.entries(by).map(([k, v]) => `${k} p99 ${fmt(p99(v), 0)} / max ${fmt(v.reduce((a, b) => Math.max(a, b), 0), 0)} ms (${v.length})`).join('; ');
}

const stepText = (steps) => Object.entries(steps).map(([k, v]) => `${k} ${fmt(v, 1)} s`).join(', ');

function upstreamTotals(dir) {
  const db = new Database(join(dir, 'upstream.db'), { readonly: true, fileMustExist: true });
  try {
    const total = db.prepare('SELECT count(*) FROM reports').pluck().get();
    const perAccount = db.prepare('SELECT count(*) FROM reports GROUP BY account').pluck().all();
    return { total, perAccount };
  } finally {
    db.close();
  }
}

/** A TCP pass-through that counts the bytes each way. */
async function countingProxy(port) {
  const bytes = { up: 0, down: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    client.on('data', (b) => (bytes.up += b.length));
    upstream.on('data', (b) => (bytes.down += b.length));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, bytes, reset: () => (bytes.up = bytes.down = 0), close: () => new Promise((r) => server.close(r)) };
}

const line = (label, text) => console.log(`${label.padEnd(34)} ${text}`);
// The machine may be shared: its load says how far to trust the figures that follow.
const machineLoad = () => line('machine load average (1 min)', loadavg()[0].toFixed(2));

// 1. Many collectors at once ------------------------------------------------------------------
async function manyCollectors() {
  const devices = Math.max(10, Math.round(5000 * SCALE));
  const each = devices * PER_DEVICE;
  console.log(`\n1. ${COLLECTORS} collectors × ${fmt(devices)} devices × ${PER_DEVICE} reports = ${fmt(COLLECTORS * each)} reports, syncing at once`);
  machineLoad();
  let t0 = performance.now();
  const up = await serveUpstream(join(root, 's1-upstream'));
  const dirs = [];
  for (let c = 0; c < COLLECTORS; c++) {
    // Each store seeded on its own (a copied store would share its virtual account ids), with
    // its own serials, so that no collector's devices are another account's.
    const dir = join(root, `s1-c${c}`);
    seed(dir, { devices, from: 0, to: each, serial: `C${c}-SN` });
    await enroll(dir, up, `Bench-${c}`);
    dirs.push(dir);
  }
  line('seeded and enrolled', `${fmt(sec(t0), 1)} s`);
  // Started a few at a time: twenty node processes starting at once on two cores take longer
  // than a start is given.
  const collectors = [];
  for (let i = 0; i < dirs.length; i += 4) collectors.push(...(await Promise.all(dirs.slice(i, i + 4).map((d) => serveCollector(d, up.url)))));
  t0 = performance.now();
  const runs = await Promise.all(collectors.map((c) => syncAndWait(c, { pollMs: 500 })));
  const wall = sec(t0);
  const failed = runs.filter((r) => r.result.status !== 'synced');
  const waiting = (await Promise.all(collectors.map((c) => c.call('GET', '/api/v1/exchange/status')))).map((s) => s.waiting?.reports);
  const upRss = peakRssMb(up.proc.pid);
  const colRss = Math.max(...collectors.map((c) => peakRssMb(c.proc.pid)));
  await Promise.all(collectors.map((c) => c.close()));
  await stop(up.proc);
  children.delete(up.proc);
  const totals = upstreamTotals(up.dir);
  const expected = COLLECTORS * each;
  const ok = failed.length === 0 && totals.total === expected && waiting.every((n) => n === 0) && totals.perAccount.every((n) => n === each);
  line('wall time, all synced', `${fmt(wall, 1)} s (${fmt(expected / wall)} reports/s; fastest collector ${fmt(Math.min(...runs.map((r) => r.seconds)), 1)} s, slowest ${fmt(Math.max(...runs.map((r) => r.seconds)), 1)} s; ${runs.reduce((n, r) => n + r.result.parts, 0)} parts)`);
  line('upstream peak RSS', `${fmt(upRss)} MB (largest collector ${fmt(colRss)} MB)`);
  line('upstream totals', `${fmt(totals.total)} reports counted, expected ${fmt(expected)}; per account ${fmt(Math.min(...totals.perAccount))}–${fmt(Math.max(...totals.perAccount))}; reports still pending on the collectors: ${waiting.reduce((a, b) => a + (b ?? NaN), 0)}${failed.length ? `; FAILED: ${failed.map((r) => r.result.error?.message).join('; ')}` : ''}`);
  line('check', ok ? 'PASS' : 'FAIL');
  return { wall, upRss, ok, total: totals.total };
}

// 2. A large backlog drains ---------------------------------------------------------------------
async function drain() {
  const reports = Math.round(3_000_000 * SCALE);
  const devices = Math.max(100, Math.round(reports / PER_DEVICE));
  console.log(`\n2. a collector holding ${fmt(reports)} unacknowledged reports (${fmt(devices)} devices) switches to connected and drains, devices reporting at ${fmt(LOAD_RATE)}/s`);
  machineLoad();
  const dir = join(root, 's2-collector');
  let t0 = performance.now();
  seed(dir, { devices, from: 0, to: reports });
  line('seeded', `${fmt(sec(t0), 1)} s`);
  const up = await serveUpstream(join(root, 's2-upstream'));
  await enroll(dir, up, 'Bench');
  const c = await serveCollector(dir, up.url);
  const token = (await cli(c.env, ['token', 'create', '--description', 'load', '--uses', '16'])).secret;
  const loadPool = new Pool(c.url, { connections: 16 });
  const load = timedReportLoad(loadPool, await registerLoadDevices(loadPool, token, 16, 'drain'), LOAD_RATE, 'drain', TAG);
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = peakRssMb(c.proc.pid);
  load.reset();
  t0 = performance.now();
  const run = await syncAndWait(c);
  const lat = await load.stop();
  const ingest = { p99: p99(lat.map((l) => l.ms)), reports: lat.length };
  const colRss = peakRssMb(c.proc.pid);
  const upRss = peakRssMb(up.proc.pid);
  await loadPool.close();
  await c.close();
  await stop(up.proc);
  children.delete(up.proc);
  const totals = upstreamTotals(up.dir);
  const r = run.result;
  line('drain time', `${fmt(run.seconds, 1)} s (target < 60 s) ${run.seconds < 60 ? 'met' : 'MISSED'}; ${r.status}, ${r.parts} parts, ${fmt(r.reports.sent)} sent, ${fmt(r.reports.accepted)} accepted${r.error ? `, error: ${r.error.message}` : ''}`);
  line('  time by step', stepText(run.steps));
  line('collector peak RSS', `${fmt(colRss)} MB (${fmt(rssBefore)} MB before the sync; target < 200 MB) ${colRss < 200 ? 'met' : 'MISSED'}`);
  line('  RSS seen by step', Object.entries(run.rssBySteps).map(([k, v]) => `${k} ${fmt(v)} MB`).join(', '));
  line('upstream peak RSS', `${fmt(upRss)} MB`);
  line('ingest p99 while draining', `${fmt(ingest.p99, 1)} ms over ${fmt(ingest.reports)} reports (target < 50 ms) ${ingest.p99 < 50 ? 'met' : 'MISSED'}`);
  line('  by step', latencyBySteps(lat, run.timeline));
  line('upstream totals', `${fmt(totals.total)} reports counted (${fmt(reports)} seeded + the load's reports that made the last part)`);
  return { seconds: run.seconds, parts: r.parts, colRss, upRss, p99: ingest.p99 };
}

// 3. An hourly sync after a large one ------------------------------------------------------------
async function incremental() {
  const held = Math.round(1_000_000 * SCALE);
  const fresh = Math.round(10_000 * SCALE);
  const devices = Math.max(100, Math.round(held / PER_DEVICE));
  console.log(`\n3. an hourly sync of a collector holding ${fmt(held)} acknowledged reports and ${fmt(fresh)} new ones`);
  machineLoad();
  const dir = join(root, 's3-collector');
  let t0 = performance.now();
  seed(dir, { devices, from: 0, to: held });
  const up = await serveUpstream(join(root, 's3-upstream'));
  await enroll(dir, up, 'Bench');
  const proxy = await countingProxy(up.port);
  // The held reports are acknowledged the way they are in the field: by a sync that sent them.
  let c = await serveCollector(dir, proxy.url);
  const first = await syncAndWait(c);
  if (first.result.status !== 'synced' || first.status.waiting?.reports !== 0) throw new Error(`the first sync did not settle: ${JSON.stringify(first.result)}`);
  await c.close();
  line('seeded, first sync acknowledged', `${fmt(sec(t0), 1)} s (first sync ${fmt(first.seconds, 1)} s, ${first.result.parts} parts, ${fmt(proxy.bytes.up / 1e6, 1)} MB up)`);
  seed(dir, { devices, from: held, to: held + fresh });
  c = await serveCollector(dir, proxy.url);
  proxy.reset();
  t0 = performance.now();
  const run = await syncAndWait(c, { wait: true, pollMs: 50 });
  const { seconds, result: r, status: after } = run;
  await c.close();
  await proxy.close();
  await stop(up.proc);
  children.delete(up.proc);
  const totals = upstreamTotals(up.dir);
  line('incremental sync', `${fmt(seconds, 2)} s (target < 2 s) ${seconds < 2 ? 'met' : 'MISSED'}; ${r.status}, ${r.parts} part(s), ${fmt(r.reports.sent)} reports sent, ${fmt(r.reports.accepted)} accepted`);
  line('  time by step', stepText(run.steps));
  line('bytes on the wire', `${fmt(proxy.bytes.up)} up (${fmt(proxy.bytes.up / Math.max(1, r.reports.sent), 0)} per report sent), ${fmt(proxy.bytes.down)} down`);
  const ok = r.reports.sent === fresh && after.waiting?.reports === 0 && totals.total === held + fresh;
  line('check', `${ok ? 'PASS' : 'FAIL'}: only the new ones sent (${fmt(r.reports.sent)} of ${fmt(fresh)}), ${after.waiting?.reports} pending after, upstream holds ${fmt(totals.total)} of ${fmt(held + fresh)}`);
  return { seconds, bytesUp: proxy.bytes.up, ok };
}

console.log(`bench:sync, scale ${SCALE}`);
if (SCENARIOS.includes(1)) await manyCollectors();
if (SCENARIOS.includes(2)) await drain();
if (SCENARIOS.includes(3)) await incremental();
clearTimeout(guard);
