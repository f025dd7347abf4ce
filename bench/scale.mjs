// npm run bench:scale: a collector with 1,000,000 devices. Seeds them straight into a real
// store (ten VAs, usage of two tags, counters as ingest keeps them; one device in ten silent
// past the stale age, one in ten silent past the reporting interval), starts the server and
// prints: registration throughput (new devices over HTTP, 16 at a time), `devices list` pages
// (the first, one deep in the list by cursor, filtered by status and by VA), the compliance
// read of a VA of 100,000 devices, the stale evaluation that stales 100,000 devices, and the
// whole alert evaluation once nothing new is stale; the last two while 16 devices report
// (BENCH_LOAD_RATE reports/s), with the ingest p99 and the longest event-loop stall a probe
// request saw meanwhile. BENCH_DEVICES scales it down. Everything runs on 127.0.0.1 under a
// temporary folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Pool } from 'undici';
import { CLI, fmt, percentile, probeStalls, registerLoadDevices, reportLoad, start, stop } from './lib.mjs';
import { loadConfig } from '../dist/config/load.js';
import { buildServices } from '../dist/main.js';
import { createLogger } from '../dist/shared/logger.js';
import { generateKeyPair, privateKeyObject } from '../dist/shared/ed25519.js';
import { signRequest, HEADER } from '../dist/device-api/signing.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 1_000_000);
const LOAD_RATE = Number(process.env.BENCH_LOAD_RATE ?? 500);
const REGISTER = 2_000;
const DAY = 86_400_000;
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const TAG2 = 'regid.2017-03.com.cisco.advantagek9,1.0_bd1da96e-ec1d-412b-a50e-53846b347d53';

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-scale-'));
const env = {
  OUTPOST_DATA_DIR: join(root, 'data'), OUTPOST_EXCHANGE_BUNDLE_DIR: join(root, 'bundles'), OUTPOST_UPSTREAM_DATA_DIR: join(root, 'upstream'),
  OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn',
  // The scheduled evaluation stays out of the way: the bench starts the one it times.
  OUTPOST_ALERTS_EVALUATE_CRON: '0 0 1 1 *',
};
let staleFrom = 0; // when the stale-due devices cross the stale age
const line = (what, value, note = '') => console.log(`${what.padEnd(44)} ${value.padStart(14)}  ${note}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 1. Seed, straight into the store.
let t0 = performance.now();
const vas = [];
{
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: env.OUTPOST_DATA_DIR, exchange: { bundleDir: env.OUTPOST_EXCHANGE_BUNDLE_DIR } } }), { logger: createLogger('error', true) });
  for (let v = 0; v < 10; v++) vas.push(s.accounts.createVa({ name: `Site ${v}` }, 'bench').id);
  const now = Date.now();
  const dev = s.db.prepare(
    `INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, software_version, status, source, registered_at, last_seen_at)
     VALUES (?, ?, 'C9300-48P', ?, ?, '17.9', 'active', 'registered', ?, ?)`,
  );
  const udi = s.db.prepare('INSERT INTO device_udis (udi, device_id) VALUES (?, ?)');
  const use = s.db.prepare('INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, 0)');
  const batch = s.db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const id = `dev_s${String(i).padStart(7, '0')}`;
      const seen = i % 10 === 0 ? now - 100 * DAY : i % 10 === 5 ? now - 40 * DAY : now - 3_600_000;
      dev.run(id, vas[i % 10], `S${i}`, `switch-${i}`, seen - DAY, seen);
      udi.run(`C9300-48P:S${i}`, id);
      use.run(id, TAG, 1 + (i % 3), seen);
      if (i % 2 === 0) use.run(id, TAG2, 1, seen);
    }
  });
  for (let i = 0; i < DEVICES; i += 100_000) batch(i, Math.min(DEVICES, i + 100_000));
  s.db.transaction(() => s.licenses.ledger.replaceAll(s.licenses.ledger.recompute()))();
  // One device in ten goes silent past the stale age 20 s from now: after the evaluation the
  // server runs at start (which must find none stale), before the one the bench times.
  staleFrom = Date.now() + 20_000;
  s.db.prepare('UPDATE devices SET last_seen_at = ? WHERE last_seen_at < ?').run(staleFrom - 90 * DAY, now - 90 * DAY);
  s.licenses.addLine({ vaId: vas[1], tag: TAG, displayName: 'DNA', kind: 'subscription', quantity: DEVICES, startsAt: now - 1e9, endsAt: now + 1e10 }, 'bench');
  s.db.close();
}
console.log(`seeded ${fmt(DEVICES)} devices in ${fmt((performance.now() - t0) / 1000, 1)} s\n`);

function cli(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args, '--json'], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`outpost ${args.join(' ')}: ${err}`))));
  });
}

const server = await start(process.execPath, [CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
const url = `http://127.0.0.1:${server.match[1]}`;
const pool = new Pool(url, { connections: 16 });
async function api(method, path) {
  const r = await pool.request({ path, method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
  const body = JSON.parse(await r.body.text());
  if (r.statusCode !== 200) throw new Error(`${method} ${path}: ${r.statusCode} ${JSON.stringify(body)}`);
  return body;
}
async function timed(n, fn) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

try {
  // The evaluation at start scans every device: wait for it (its silent alerts) before timing anything.
  while (!(await api('GET', '/api/v1/alerts?kind=device_silent')).items.length) await new Promise((r) => setTimeout(r, 200));
  if ((await api('GET', '/api/v1/alerts?kind=device_stale')).items.length) throw new Error('devices went stale before the timed evaluation: the evaluation at start outlasted the 20 s margin');
  // 2. Registration: new devices, 16 at a time, each request signed by the device's new key.
  const collectorId = (await api('GET', '/device/v1/collector')).collectorId;
  const token = (await cli(['token', 'create', '--description', 'bench', '--uses', String(REGISTER + 100), '--va', 'Site 3'])).secret;
  const lat = [];
  t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < REGISTER) {
      const i = next++;
      const kp = generateKeyPair();
      const key = privateKeyObject(kp.seed);
      const body = JSON.stringify({ token, udi: { pid: 'C9200-24T', serial: `NEW${i}` }, publicKey: kp.publicKey.toString('base64'), hostname: `new-${i}` });
      const ts = String(Math.floor(Date.now() / 1000));
      const t = performance.now();
      const r = await pool.request({ path: '/device/v1/register', method: 'POST', body, headers: { [HEADER.timestamp]: ts, [HEADER.signature]: signRequest(key, { method: 'POST', path: '/device/v1/register', collectorId, deviceId: '-', timestamp: ts, body }) } });
      await r.body.text();
      if (r.statusCode !== 201) throw new Error(`register: ${r.statusCode}`);
      lat.push(performance.now() - t);
    }
  }));
  const regSeconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  line('registration, 16 at a time', `${fmt(REGISTER / regSeconds)} /s`, `p99 ${fmt(percentile(lat, 99), 1)} ms (${fmt(REGISTER)} new devices)`);

  // 3. devices list pages and the compliance read.
  const deep = `dev_s${String(Math.floor(DEVICES / 2)).padStart(7, '0')}`;
  line('devices list, first page of 100', `${fmt(await timed(20, () => api('GET', '/api/v1/devices?limit=100')), 1)} ms`);
  line('devices list, a page deep in the list', `${fmt(await timed(20, () => api('GET', `/api/v1/devices?limit=100&cursor=${deep}`)), 1)} ms`);
  line('devices list, status stale', `${fmt(await timed(20, () => api('GET', '/api/v1/devices?limit=100&status=stale')), 1)} ms`, '(none stale yet: a full scan)');
  line('devices list, one VA', `${fmt(await timed(20, () => api('GET', `/api/v1/devices?limit=100&vaId=${vas[4]}`)), 1)} ms`);
  line(`compliance of a VA of ${fmt(DEVICES / 10)} devices`, `${fmt(await timed(20, () => api('GET', `/api/v1/virtual-accounts/${vas[1]}/compliance`)), 1)} ms`);

  // 4. Stale evaluation, then the whole alert evaluation, while devices report.
  const loadToken = (await cli(['token', 'create', '--description', 'load', '--uses', '16'])).secret;
  const loaders = await registerLoadDevices(pool, loadToken, 16, 'scale');
  const sleep = () => new Promise((r) => setTimeout(r, 3000));
  for (const [what, note, job] of [
    ['baseline, no job', 'the floor under the two below', sleep],
    ['stale evaluation', `stales ${fmt(DEVICES / 10)} devices`, async () => {
      if (Date.now() < staleFrom + 1000) throw new Error('the timed evaluation ran before the devices went stale');
      await api('POST', '/api/v1/alerts/evaluate');
    }],
    ['alert evaluation', 'nothing new stale', () => api('POST', '/api/v1/alerts/evaluate')],
  ]) {
    const load = reportLoad(pool, loaders, LOAD_RATE, what.replace(/ /g, '-'), TAG);
    await new Promise((r) => setTimeout(r, Math.max(1000, staleFrom + 1000 - Date.now())));
    load.reset();
    const probe = probeStalls(url);
    const t = performance.now();
    await job();
    const ms = performance.now() - t;
    const stalls = await probe.stop();
    const ingest = await load.stop();
    line(what, `${fmt(ms / 1000, 2)} s`, `${note}; ingest p99 ${fmt(ingest.p99, 1)} ms over ${fmt(ingest.reports)} reports, longest stall ${fmt(stalls.longestStallMs)} ms`);
  }
  const verify = await api('POST', '/api/v1/compliance/verify');
  if (verify.drift.length) throw new Error(`the counters drifted: ${JSON.stringify(verify.drift.slice(0, 3))}`);
  line('stale devices after', fmt((await api('GET', '/api/v1/alerts?kind=device_stale')).items.reduce((n, a) => n + a.details.devices, 0)), 'compliance verify: no drift');
} finally {
  await pool.close();
  await stop(server.proc);
  rmSync(root, { recursive: true, force: true });
}
