// npm run bench:ingest: signed single-report ingest and batch ingest of Outpost, side by side
// with the fixed reference pipeline (../shared/bench-reference), under the same load on this
// machine, alternating A B A B. Then a compliance read for a VA of 100,000 devices.
// Everything runs on 127.0.0.1 and stops by itself. BENCH_SECONDS sets each phase's length.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Pool } from 'undici';
import { CLI, cpuSeconds, drive, fmt, peakRssMb, root, start, stop } from './lib.mjs';
import { generateKeyPair, privateKeyObject, signWith } from '../dist/shared/ed25519.js';
import { signRequest, HEADER } from '../dist/device-api/signing.js';
import { seedCompliance } from './seed.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DEVICES = 64;
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const REFERENCE = join(root, '../shared/bench-reference/reference-ingest.cjs');

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
const env = { OUTPOST_DATA_DIR: join(dir, 'data'), OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn' };
const token = JSON.parse(execFileSync(process.execPath, [CLI, 'token', 'create', '--description', 'bench', '--uses', String(DEVICES), '--json'], { env: { ...process.env, ...env } })).secret;

const outpost = await start(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []), CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
const outpostUrl = `http://127.0.0.1:${outpost.match[1]}`;
const refKey = generateKeyPair();
const reference = await start(process.execPath, [REFERENCE], {
  NODE_PATH: join(root, 'node_modules'), PORT: '0', DB: join(dir, 'ref.db'), PUBKEY: refKey.publicKey.toString('base64'),
}, /listening (\d+)/);
const refUrl = `http://127.0.0.1:${reference.match[1]}`;

const outPool = new Pool(outpostUrl, { connections: DEVICES, pipelining: 1 });
const refPool = new Pool(refUrl, { connections: DEVICES, pipelining: 1 });

// 64 devices registered the way real ones do: key pair, token, proof-of-possession signature.
const collector = JSON.parse(await (await outPool.request({ path: '/device/v1/collector', method: 'GET' })).body.text());
const devices = [];
for (let i = 0; i < DEVICES; i++) {
  const kp = generateKeyPair();
  const key = privateKeyObject(kp.seed);
  const body = JSON.stringify({ token, udi: { pid: 'C9300-48P', serial: `BENCH${i}` }, hostname: `sw${i}`, softwareVersion: '17.9', publicKey: kp.publicKey.toString('base64') });
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = signRequest(key, { method: 'POST', path: '/device/v1/register', collectorId: collector.collectorId, deviceId: '-', timestamp: ts, body });
  const r = await outPool.request({ path: '/device/v1/register', method: 'POST', body, headers: { [HEADER.timestamp]: ts, [HEADER.signature]: sig, 'content-type': 'application/json' } });
  const reg = JSON.parse(await r.body.text());
  if (r.statusCode !== 201) throw new Error(`register: ${JSON.stringify(reg)}`);
  devices.push({ id: reg.deviceId, key });
}

let phase = 0;
const report = (w, n) => {
  const now = Math.floor(Date.now() / 1000);
  return { reportId: `p${phase}-${w}-${n}`, seq: n + 1, generatedAt: now, measurements: [{ tag: TAG, count: 1 + (n % 7), start: now - 3600, end: now }] };
};

// Requests are built and signed before each phase starts, for both systems alike, so that the
// load generator (sharing this 2-core machine) spends its time sending, not signing.
const PER_WORKER = Math.ceil((SECONDS * 9000) / DEVICES);
function presign(build) {
  return devices.map((_, w) => Array.from({ length: PER_WORKER }, (_, n) => build(w, n)));
}

function outpostRequest(path, body, d) {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = signRequest(d.key, { method: 'POST', path, collectorId: collector.collectorId, deviceId: d.id, timestamp: ts, body });
  return { path, method: 'POST', body, headers: { 'content-type': 'application/json', [HEADER.device]: d.id, [HEADER.timestamp]: ts, [HEADER.signature]: sig } };
}

function sender(pool, requests, okStatus) {
  return async (w, n) => {
    const req = requests[w][n];
    if (!req) return new Promise((r) => setTimeout(() => r(false), 1)); // ran out: counts as not done
    const r = await pool.request(req);
    await r.body.text();
    return r.statusCode === okStatus;
  };
}

const outpostSingle = () => sender(outPool, presign((w, n) => outpostRequest('/device/v1/report', JSON.stringify(report(w, n)), devices[w])), 200);

const refPriv = privateKeyObject(refKey.seed);
const referenceSingle = () =>
  sender(refPool, presign((w, n) => {
    // The same report in the reference's envelope, padded to the size of Outpost's request (body and signed headers).
    const body = JSON.stringify({ deviceId: devices[w].id, reportId: `p${phase}-${w}-${n}`, report: report(w, n), pad: 'x'.repeat(40) });
    return { path: '/report', method: 'POST', body, headers: { 'content-type': 'application/json', 'x-signature': signWith(refPriv, body).toString('base64') } };
  }), 202);

const BATCH_WORKERS = 16;
const outpostBatch = () =>
  sender(outPool, devices.slice(0, BATCH_WORKERS).map((d, w) =>
    Array.from({ length: Math.ceil((SECONDS * 900) / BATCH_WORKERS) }, (_, n) =>
      outpostRequest('/device/v1/reports', JSON.stringify({ reports: Array.from({ length: 100 }, (_, k) => report(w, n * 100 + k)) }), d))), 200);

const runs = { outpost: [], reference: [] };
console.log(`single-report ingest, ${DEVICES} concurrent devices, ${SECONDS} s a phase, alternating A B A B after a warm-up of each`);
for (const round of [0, 1, 2]) {
  for (const [name, build] of [['outpost', outpostSingle], ['reference', referenceSingle]]) {
    phase++;
    const once = build();
    const pid = (name === 'outpost' ? outpost : reference).proc.pid;
    const cpu0 = cpuSeconds(pid);
    const r = await drive({ workers: DEVICES, seconds: round === 0 ? 3 : SECONDS, once });
    if (round === 0) continue; // warm-up: JIT and page cache, for both alike
    r.cpuPerReq = ((cpuSeconds(pid) - cpu0) / r.ok) * 1e6;
    runs[name].push(r);
    console.log(`  round ${round} ${name.padEnd(9)} ${fmt(r.rps)} req/s  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  server CPU ${fmt(r.cpuPerReq)} µs/req  (${r.bad} not done)`);
  }
}
phase++;
const batch = await drive({ workers: BATCH_WORKERS, seconds: SECONDS, once: outpostBatch() });
const mean = (xs, k) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
const single = { rps: mean(runs.outpost, 'rps'), p50: mean(runs.outpost, 'p50'), p99: Math.max(...runs.outpost.map((r) => r.p99)) };
const ref = { rps: mean(runs.reference, 'rps') };
const rss = peakRssMb(outpost.proc.pid);
await outPool.close();
await refPool.close();
await stop(outpost.proc);
await stop(reference.proc);

const compliance = await seedCompliance(join(dir, 'compliance'), 100_000);

console.log('');
console.log(`outpost single-report ingest: ${fmt(single.rps)} req/s (durable replies), p50 ${fmt(single.p50, 1)} ms, p99 ${fmt(single.p99, 1)} ms`);
console.log(`outpost batch ingest:         ${fmt(batch.rps * 100)} reports/s (100 a request, ${BATCH_WORKERS} concurrent), p99 ${fmt(batch.p99, 1)} ms`);
console.log(`outpost server peak RSS:      ${fmt(rss, 1)} MB`);
console.log(`reference single-report:      ${fmt(ref.rps)} req/s`);
console.log(`compliance read, VA of ${fmt(compliance.devices)} devices: ${fmt(compliance.serviceMs, 2)} ms in the service, ${fmt(compliance.httpMs, 2)} ms over HTTP (median of ${compliance.samples})`);
console.log(`ingest ratio to reference: ${(single.rps / ref.rps).toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
