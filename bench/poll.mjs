// npm run bench:poll: the IOS-XE poller at scale, every process on 127.0.0.1 under a temporary
// folder. One process (bench/poll-fake.mjs, the test double test/helpers/fake-iosxe.ts) serves
// 1,000 fake devices of 20 reports each over HTTPS with a test CA; a real collector
// (`outpost serve`, its cisco.caFile that CA, its poll schedule out of the way) is given them by
// one CSV import and polls them all through `POST /cisco/poll`, while 16 signed devices report
// through the device API at a paced rate. Prints the poll's time, the collector's peak RSS and
// the ingest p99 during the poll, each beside its target, and checks that every report the
// devices hold was stored, once.
// BENCH_SCALE scales the device count (0.1 for a quick run); BENCH_POLL_CONCURRENCY sets
// cisco.concurrency (default: the product's); BENCH_LOAD_RATE the device load (reports/s);
// BENCH_TIMEOUT_SECONDS bounds the whole run; BENCH_PROFILE_DIR writes the collector's CPU
// profile there (node --cpu-prof).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { Pool } from 'undici';
import { CLI, cpuSeconds, fmt, peakRssMb, percentile, probeStalls, registerLoadDevices, root as repo, start, stop, timedReportLoad } from './lib.mjs';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const DEVICES = Math.max(1, Math.round(1000 * SCALE));
const PER_DEVICE = 20;
const LOAD_RATE = Number(process.env.BENCH_LOAD_RATE ?? 500);
const LOAD_DEVICES = 16;
const BASELINE_SECONDS = 3;
const DEFAULTS = JSON.parse(readFileSync(join(repo, 'config/default.json'), 'utf8')).cisco;
const CONCURRENCY = Number(process.env.BENCH_POLL_CONCURRENCY ?? DEFAULTS.concurrency);
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const NEVER = '0 0 1 1 *'; // schedules stay out of the way: the bench starts what it times
const TARGET = { pollSeconds: 60, rssMb: 200, p99Ms: 50 };

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-poll-'));
const children = new Set();
// Bounded in time: a hung step ends the bench rather than the machine's patience.
const guard = setTimeout(() => {
  console.error('bench:poll took too long; stopping');
  process.exit(2);
}, Number(process.env.BENCH_TIMEOUT_SECONDS ?? 600) * 1000);
guard.unref();
process.on('exit', () => {
  for (const p of children) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sec = (t0) => (performance.now() - t0) / 1000;
const line = (label, text) => console.log(`${label.padEnd(34)} ${text}`);
const verdict = (ok) => (ok ? 'met' : 'UNMET');

/**
 * The test double is TypeScript and benches run JavaScript: each file it imports from
 * test/helpers is transpiled on its own (types dropped, nothing checked) next to the others,
 * so its `./x.js` imports resolve as they do under the compiler.
 */
function transpileHelpers(entry, outDir) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
  const queue = [entry];
  const done = new Set();
  while (queue.length) {
    const file = queue.pop();
    if (done.has(file)) continue;
    done.add(file);
    const src = readFileSync(file, 'utf8');
    const out = ts.transpileModule(src, { fileName: file, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    writeFileSync(join(outDir, basename(file).replace(/\.ts$/, '.js')), out.outputText);
    for (const m of src.matchAll(/from '(\.\/[^']+)\.js'/g)) queue.push(join(dirname(file), `${m[1]}.ts`));
  }
  return join(outDir, basename(entry).replace(/\.ts$/, '.js'));
}

/** The fake devices' process; `ask(line)` sends a command and resolves to its JSON answer. */
async function startFake(modulePath, count, startTime) {
  // Its CA and certificates go to the system temp folder: pointed at this bench's, they are removed with it.
  const proc = spawn(process.execPath, [join(repo, 'bench/poll-fake.mjs'), modulePath, String(count), String(PER_DEVICE), String(startTime)], {
    env: { ...process.env, TMPDIR: root },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(proc);
  const answers = createInterface({ input: proc.stdout });
  const waiting = [];
  answers.on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  const next = () =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`the fake devices' process exited (${code})`));
      proc.once('exit', onExit);
      waiting.push((v) => {
        proc.off('exit', onExit);
        resolve(v);
      });
    });
  const ready = await next();
  return {
    proc,
    ready,
    ask: (cmd) => {
      const p = next();
      proc.stdin.write(`${cmd}\n`);
      return p;
    },
    async stop() {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin.write('stop\n');
      await exited;
      children.delete(proc);
    },
  };
}

/** `outpost serve` with an operator pool on its port. */
async function serveCollector(dataDir, caFile) {
  const env = {
    OUTPOST_DATA_DIR: dataDir, OUTPOST_EXCHANGE_BUNDLE_DIR: join(dataDir, 'bundles'), OUTPOST_UPSTREAM_DATA_DIR: join(dataDir, 'upstream'),
    OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'info',
    OUTPOST_ALERTS_EVALUATE_CRON: NEVER, OUTPOST_EXCHANGE_SYNC_CRON: NEVER, OUTPOST_EXCHANGE_EXPORT_CRON: NEVER,
    OUTPOST_CISCO_POLL_CRON: NEVER, OUTPOST_CISCO_CA_FILE: caFile, OUTPOST_CISCO_CONCURRENCY: String(CONCURRENCY),
  };
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const { proc, match } = await start(process.execPath, [...profile, CLI, 'serve'], env, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
  children.add(proc);
  const url = `http://127.0.0.1:${match[1]}`;
  const pool = new Pool(url, { connections: 2 });
  const call = async (method, path, body) => {
    const r = await pool.request({ path: `/api/v1${path}`, method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}), headersTimeout: 0, bodyTimeout: 0 });
    const json = JSON.parse(await r.body.text());
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: ${r.statusCode} ${JSON.stringify(json).slice(0, 500)}`);
    return json;
  };
  return {
    proc, url, call,
    async close() {
      await pool.close();
      await stop(proc);
      children.delete(proc);
    },
  };
}

/** The latencies of the reports due by `until` (the ones after it are not the poll's doing). */
function summarize(lat, until) {
  const during = lat.filter((l) => l.due <= until);
  const sorted = during.map((l) => l.ms).sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, reports: sorted.length, refused: during.filter((l) => l.status !== 200).length };
}

/** What the collector's store holds of the fake devices' reports (read once it has stopped). */
function stored(dataDir) {
  const db = new Database(join(dataDir, 'outpost.db'), { readonly: true, fileMustExist: true });
  try {
    const perDevice = db
      .prepare("SELECT count(r.id) FROM devices v LEFT JOIN reports r ON r.device_id = v.id AND r.source = 'rum' WHERE v.udi_serial LIKE 'FAKE%' GROUP BY v.id")
      .pluck()
      .all();
    const total = db.prepare("SELECT count(*) FROM reports WHERE source = 'rum'").pluck().get();
    return { total, devices: perDevice.length, min: Math.min(...perDevice), max: Math.max(...perDevice) };
  } finally {
    db.close();
  }
}

async function main() {
  const expected = DEVICES * PER_DEVICE;
  console.log(`bench:poll, scale ${SCALE}: ${fmt(DEVICES)} fake IOS-XE devices × ${PER_DEVICE} reports = ${fmt(expected)} reports, devices reporting at ${fmt(LOAD_RATE)}/s meanwhile`);
  line('machine load average (1 min)', loadavg()[0].toFixed(2));

  let t0 = performance.now();
  const fakeModule = transpileHelpers(join(repo, 'test/helpers/fake-iosxe.ts'), join(root, 'fake'));
  // Recent measurements (ending a few days ago), so that every device counts as reporting.
  const day = 86_400;
  const startTime = (Math.floor(Date.now() / 1000 / day) - 2 * PER_DEVICE - 5) * day;
  const fake = await startFake(fakeModule, DEVICES, startTime);
  line('fake devices listening', `${fmt(fake.ready.devices.length)} on 127.0.0.1, one process (${fmt(sec(t0), 1)} s)`);

  const dataDir = join(root, 'data');
  t0 = performance.now();
  const c = await serveCollector(dataDir, fake.ready.caFile);
  const va = (await c.call('GET', '/virtual-accounts')).items[0].id;
  const csv = ['name,host,port,username,password,va', ...fake.ready.devices.map((d) => `sw-${d.index},${d.host},${d.port},${d.username},${d.password},${va}`)].join('\n');
  const added = (await c.call('POST', '/cisco/devices/import', { csv })).added.length;
  line('collector started, devices added', `${fmt(added)} by one CSV import (${fmt(sec(t0), 1)} s in all)`);
  if (added !== DEVICES) throw new Error(`the CSV import added ${added} devices, not ${DEVICES}`);

  const loadPool = new Pool(c.url, { connections: LOAD_DEVICES });
  const token = (await c.call('POST', '/tokens', { vaId: va, description: 'bench:poll load', maxUses: LOAD_DEVICES })).secret;
  const load = timedReportLoad(loadPool, await registerLoadDevices(loadPool, token, LOAD_DEVICES, 'poll'), LOAD_RATE, 'poll', TAG);
  await new Promise((r) => setTimeout(r, 1000));
  // The floor under the poll's figure: the same load for a few seconds with nothing else running.
  load.reset();
  await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
  const baseline = summarize(load.reset(), performance.now());
  const rssBefore = peakRssMb(c.proc.pid);
  const cpu0 = { collector: cpuSeconds(c.proc.pid), fake: cpuSeconds(fake.proc.pid) };

  load.reset();
  const probe = probeStalls(c.url);
  t0 = performance.now();
  const items = (await c.call('POST', '/cisco/poll', {})).items;
  const pollSeconds = sec(t0);
  const pollEnd = performance.now();
  const lat = await load.stop();
  const stalls = await probe.stop();
  const during = lat.filter((l) => l.due <= pollEnd);
  const ingest = summarize(lat, pollEnd);
  // When, in the poll, the answers were slow: the share of reports over the target in each tenth of it.
  const tenths = Array.from({ length: 10 }, (_, k) => {
    const part = during.filter((l) => Math.min(9, Math.floor((10 * (l.due - t0)) / (pollEnd - t0))) === k);
    return part.length ? `${Math.round((100 * part.filter((l) => l.ms >= TARGET.p99Ms).length) / part.length)}%` : '-';
  });
  const cpu = { collector: cpuSeconds(c.proc.pid) - cpu0.collector, fake: cpuSeconds(fake.proc.pid) - cpu0.fake };
  const rss = peakRssMb(c.proc.pid);
  const served = await fake.ask('stats');
  await loadPool.close();
  await c.close();
  await fake.stop();
  const store = stored(dataDir);

  const failed = items.filter((i) => !i.ok);
  const accepted = items.reduce((n, i) => n + i.accepted, 0);
  const byCode = {};
  for (const f of failed) byCode[f.error.code] = (byCode[f.error.code] ?? 0) + 1;

  line('poll concurrency', `${CONCURRENCY} devices at once (cisco.concurrency; timeout ${process.env.OUTPOST_CISCO_TIMEOUT_SECONDS ?? DEFAULTS.timeoutSeconds} s, ${process.env.OUTPOST_CISCO_RETRIES ?? DEFAULTS.retries} retries)`);
  line('time to poll them all', `${fmt(pollSeconds, 1)} s, ${fmt(DEVICES / pollSeconds, 1)} devices/s (target < ${TARGET.pollSeconds} s) ${verdict(pollSeconds < TARGET.pollSeconds)}`);
  line('collector peak RSS', `${fmt(rss)} MB (${fmt(rssBefore)} MB at its peak before the poll; target < ${TARGET.rssMb} MB) ${verdict(rss < TARGET.rssMb)}`);
  line('ingest p99 during the poll', `${fmt(ingest.p99, 1)} ms over ${fmt(ingest.reports)} reports (target < ${TARGET.p99Ms} ms) ${verdict(ingest.p99 < TARGET.p99Ms)}; p50 ${fmt(ingest.p50, 1)} ms, max ${fmt(ingest.max)} ms${ingest.refused ? `; ${ingest.refused} NOT ACCEPTED` : ''}`);
  line('  baseline, no poll', `ingest p99 ${fmt(baseline.p99, 1)} ms, p50 ${fmt(baseline.p50, 1)} ms over ${fmt(baseline.reports)} reports in ${BASELINE_SECONDS} s`);
  line('  over the target, by tenth of poll', tenths.join(' '));
  line('longest stall during the poll', `${fmt(stalls.longestStallMs)} ms (GET /healthz every 5 ms: the collector's event loop held; probe p99 ${fmt(stalls.probeP99, 1)} ms)`);
  line('CPU during the poll', `collector ${fmt(cpu.collector, 1)} s, fake devices ${fmt(cpu.fake, 1)} s (of ${fmt(availableParallelism() * pollSeconds, 1)} core-seconds on ${availableParallelism()} cores)`);
  line('fake devices served', `${fmt(served.requests)} requests over ${fmt(served.connections)} connections (${Object.entries(served.byRequest).map(([k, v]) => `${k}: ${fmt(v)}`).join('; ')}); fake RSS ${fmt(served.rssMb)} MB`);
  line('poll results', `${fmt(items.length - failed.length)} of ${fmt(items.length)} devices ok, ${fmt(accepted)} reports accepted${failed.length ? `; FAILED: ${JSON.stringify(byCode)}, e.g. ${failed[0].name}: ${failed[0].error.message}` : ''}`);
  line('reports stored', `${fmt(store.total)} of ${fmt(expected)} expected (${fmt(store.devices)} devices, ${store.min}–${store.max} reports each; the devices served ${fmt(served.reportsServed)})`);
  const ok = failed.length === 0 && items.length === DEVICES && accepted === expected && store.total === expected && store.devices === DEVICES && store.min === PER_DEVICE && store.max === PER_DEVICE;
  line('check', ok ? 'PASS: every report polled and stored once' : 'FAIL: reports missing or extra (see above)');
  line('machine load average (1 min)', loadavg()[0].toFixed(2));
  return ok;
}

try {
  const ok = await main();
  clearTimeout(guard);
  process.exitCode = ok ? 0 : 1;
} catch (e) {
  console.error(`bench:poll failed: ${e.stack ?? e}`);
  process.exitCode = 1;
}
