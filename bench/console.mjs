// npm run bench:console: the console's queries at 100,000 devices. Seeds them straight into a
// real store (ten VAs, four product ids, hostnames and serials, one device in ten stale, one in
// twenty known from RUM files), prints the query plan of each device list query (a SCAN of the
// devices table is what an index must remove), then starts the server and prints p50/p99 over
// HTTP of what the console asks: the first page, a search, a filter, a sort, a deep page by
// cursor, a label filter (a label on 1 device in 3, one on 1 in 100, one on 10 devices), the
// overview, and the time to download every device as CSV. BENCH_DEVICES and
// BENCH_RUNS scale it. Everything runs on 127.0.0.1 under a temporary folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { CLI, fmt, percentile, start, stop } from './lib.mjs';
import { loadConfig } from '../dist/config/load.js';
import { buildServices } from '../dist/main.js';
import { createLogger } from '../dist/shared/logger.js';
import { labelService } from '../dist/labels/access.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const PIDS = ['C9300-48P', 'C9200-24T', 'ISR4451-X/K9', 'C8300-1N1S-6T'];
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';
const DAY = 86_400_000;

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-console-'));
const env = {
  OUTPOST_DATA_DIR: join(root, 'data'), OUTPOST_EXCHANGE_BUNDLE_DIR: join(root, 'bundles'), OUTPOST_UPSTREAM_DATA_DIR: join(root, 'upstream'),
  OUTPOST_HTTP_PORT: '0', OUTPOST_LOG_LEVEL: 'warn', OUTPOST_ALERTS_EVALUATE_CRON: '0 0 1 1 *',
};
const line = (what, value, note = '') => console.log(`${what.padEnd(46)} ${value.padStart(22)}  ${note}`);
const serial = (i) => `FOC${String(i * 7919 % 1_000_003).padStart(7, '0')}`;

// The console's device queries, as query strings of GET /api/v1/devices.
const vas = [];
const deepCursor = `dev_c${String(Math.floor(DEVICES * 0.9)).padStart(7, '0')}`;
const queries = () => [
  ['first page of 50', 'limit=50'],
  ['search: a serial prefix', `limit=50&q=${serial(4242).slice(0, 8)}`],
  ['search: a hostname prefix', 'limit=50&q=edge-7'],
  ['search: lower case, many matches', 'limit=50&q=foc00'],
  ['search: a broad prefix (2 devices in 3)', 'limit=50&q=edge'],
  ['filter: one VA, stale', `limit=50&vaId=${vas[3]}&status=stale`],
  ['filter: source rum', 'limit=50&source=rum'],
  ['sort: hostname, descending', 'limit=50&sort=hostname&order=desc'],
  ['sort: last seen, one VA', `limit=50&sort=lastSeen&vaId=${vas[5]}`],
  ['deep page by cursor (90%)', `limit=50&cursor=${deepCursor}`],
  ['label: on 1 device in 3', 'limit=50&label=Core'],
  ['label: on 1 device in 100', 'limit=50&label=Audit'],
  ['label: on 10 devices', 'limit=50&label=Rare'],
  ['label: two labels (all of them)', 'limit=50&label=Core&label=Audit'],
  ['label: 1 in 100, one VA, by hostname', `limit=50&label=Audit&vaId=${vas[1]}&sort=hostname`],
];
const labelIds = {};

// 1. Seed, straight into the store.
let t0 = performance.now();
{
  const s = buildServices(loadConfig({ env: {}, overrides: { dataDir: env.OUTPOST_DATA_DIR, exchange: { bundleDir: env.OUTPOST_EXCHANGE_BUNDLE_DIR } } }), { logger: createLogger('error', true) });
  for (let v = 0; v < 10; v++) vas.push(s.accounts.createVa({ name: `Site ${v}` }, 'bench').id);
  const now = Date.now();
  const dev = s.db.prepare(
    `INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, software_version, public_key, status, source, registered_at, last_seen_at)
     VALUES (?, ?, ?, ?, ?, '17.9', ?, ?, ?, ?, ?)`,
  );
  const udi = s.db.prepare('INSERT INTO device_udis (udi, device_id) VALUES (?, ?)');
  const use = s.db.prepare('INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, 0)');
  for (const [name, colour] of [['Core', '#1a7f37'], ['Audit', '#9a6700'], ['Rare', '#cf222e']]) labelIds[name] = labelService(s).create({ name, colour }, 'bench').id;
  const labelled = s.db.prepare('INSERT INTO device_labels (label_id, device_id) VALUES (?, ?)');
  const batch = s.db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const id = `dev_c${String(i).padStart(7, '0')}`;
      const pid = PIDS[i % PIDS.length];
      const rum = i % 20 === 7;
      const seen = now - (i % 97) * 3_600_000;
      dev.run(id, vas[i % 10], pid, serial(i), `${i % 3 ? 'edge' : 'core'}-${i}.site${i % 10}`, rum ? null : 'AAAA', i % 10 === 3 ? 'stale' : 'active', rum ? 'rum' : 'registered', seen - 30 * DAY, seen);
      udi.run(`${pid}:${serial(i)}`, id);
      use.run(id, TAG, 1, seen);
      if (i % 3 === 0) labelled.run(labelIds.Core, id);
      if (i % 100 === 1) labelled.run(labelIds.Audit, id);
      if (i % Math.max(1, Math.floor(DEVICES / 10)) === 5) labelled.run(labelIds.Rare, id);
    }
  });
  for (let i = 0; i < DEVICES; i += 50_000) batch(i, Math.min(DEVICES, i + 50_000));
  s.db.transaction(() => s.licenses.ledger.replaceAll(s.licenses.ledger.recompute()))();
  s.licenses.addLine({ vaId: vas[1], tag: TAG, displayName: 'DNA', kind: 'subscription', quantity: DEVICES / 20, startsAt: now - 1e9, endsAt: now + 1e10 }, 'bench');
  console.log(`seeded ${fmt(DEVICES)} devices in ${fmt((performance.now() - t0) / 1000, 1)} s\n`);

  // 2. The plan of each list query: the SQL the repository builds, explained with its arguments.
  console.log('query plans (devices table):');
  const prepare = s.db.prepare.bind(s.db);
  let explained = null;
  s.db.prepare = (sql) => {
    const stmt = prepare(sql);
    if (!/FROM devices /.test(sql) || !/LIMIT \?$/.test(sql)) return stmt;
    return { all: (...args) => ((explained = prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args).map((r) => r.detail)), stmt.all(...args)) };
  };
  for (const [what, qs] of queries()) {
    const params = new URLSearchParams(qs);
    const p = Object.fromEntries(params);
    const labels = params.getAll('label').map((n) => labelIds[n]);
    s.devices.list({ ...p, limit: Number(p.limit), sort: p.sort ?? 'id', order: p.order ?? 'asc', labelIds: labels.length ? labels : undefined });
    line(`  ${what}`, '', explained.join(' | '));
  }
  s.db.prepare = prepare;
  s.db.close();
}

// 3. Over HTTP, as the console asks.
const server = await start(process.execPath, [CLI, 'serve'], { ...env, OUTPOST_LOG_LEVEL: 'info' }, /"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
const url = `http://127.0.0.1:${server.match[1]}`;
const pool = new Pool(url, { connections: 1 });
async function get(path) {
  const r = await pool.request({ path, method: 'GET' });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${path}: ${r.statusCode} ${text.slice(0, 300)}`);
  return text;
}
async function timed(path, runs = RUNS) {
  await get(path); // warm the statement cache and the pages
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await get(path);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return `${fmt(percentile(times, 50), 1)} / ${fmt(percentile(times, 99), 1)} ms`;
}

try {
  console.log(`\nover HTTP, p50 / p99 of ${RUNS} runs:`);
  for (const [what, qs] of queries()) {
    const body = JSON.parse(await get(`/api/v1/devices?${qs}`));
    line(`devices: ${what}`, await timed(`/api/v1/devices?${qs}`), `${body.items.length} rows`);
  }
  line('overview', await timed('/api/v1/overview'));
  line('labels (with counts)', await timed('/api/v1/labels'));
  t0 = performance.now();
  const csv = await get('/api/v1/devices.csv');
  line(`devices CSV, all ${fmt(DEVICES)}`, `${fmt(performance.now() - t0, 0)} ms`, `${fmt(csv.length / 1e6, 1)} MB, ${fmt(csv.split('\r\n').length - 2)} rows`);
} finally {
  await pool.close();
  await stop(server.proc);
  rmSync(root, { recursive: true, force: true });
}
