// npm run bench:rum: a 64 MB RUM file (one <RUMReport> per line, each a new device) imported
// through the operator API while 16 devices report. Prints the import time, the longest
// event-loop stall of the collector while it runs (perf_hooks.monitorEventLoopDelay) and the
// device-ingest p50/p99 during it. The collector runs in this process (so its event loop can be
// watched); the devices run on a worker thread with their own loop, so their latency is the
// collector's. BENCH_RUM_MB sets the file size; BENCH_DIST another build (e.g. main's) to compare.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fmt, percentile } from './lib.mjs';

const DIST = resolve(process.env.BENCH_DIST ?? join(import.meta.dirname, '..', 'dist'));
const TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

if (isMainThread) await main();
else await devices(workerData);

async function main() {
  const MB = Number(process.env.BENCH_RUM_MB ?? 64);
  const { loadConfig } = await import(join(DIST, 'config/load.js'));
  const { buildServices, createRequestHandler } = await import(join(DIST, 'main.js'));
  const { createLogger } = await import(join(DIST, 'shared/logger.js'));
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-rum-'));
  const config = loadConfig({
    env: {},
    overrides: { dataDir: join(root, 'data'), http: { port: 0 }, exchange: { bundleDir: join(root, 'b') }, upstream: { dataDir: join(root, 'u') }, rum: { maxElements: 1_000_000 } },
  });
  const services = buildServices(config, { logger: createLogger('error', true) });
  const server = http.createServer(createRequestHandler(services));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const va = services.accounts.list()[0].id;

  const file = rumFile((MB << 20) - 4096); // just under the 64 MB upload limit
  console.log(`RUM file: ${fmt(file.bytes.length / 1048576, 1)} MB, ${fmt(file.elements)} elements (${DIST})`);

  const token = await (await fetch(`${url}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vaId: va, description: 'bench', maxUses: 100, expiresInDays: 1 }) })).json();
  const worker = new Worker(new URL(import.meta.url), { workerData: { url, collectorId: services.identity.collectorId, token: token.secret, dist: DIST } });
  await new Promise((r) => worker.once('message', r)); // devices registered, reporting
  await new Promise((r) => setTimeout(r, 1000));

  const delay = monitorEventLoopDelay({ resolution: 5 });
  worker.postMessage('measure');
  delay.enable();
  const t0 = performance.now();
  const res = await fetch(`${url}/api/v1/usage/rum?vaId=${va}`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: file.bytes });
  const body = await res.json();
  const seconds = (performance.now() - t0) / 1000;
  delay.disable();
  worker.postMessage('stop');
  const lat = await new Promise((r) => worker.once('message', r));
  lat.sort((a, b) => a - b);
  if (res.status !== 200) console.log('import failed:', res.status, JSON.stringify(body).slice(0, 300));
  console.log(`import                ${fmt(seconds, 1)} s  ${fmt(file.elements / seconds)} elements/s  (${body.accepted ?? 0} accepted)`);
  console.log(`longest loop stall    ${fmt(delay.max / 1e6)} ms  (p99 ${fmt(delay.percentile(99) / 1e6)} ms)`);
  console.log(`device ingest         ${fmt(lat.length)} reports during the import, p50 ${fmt(percentile(lat, 50), 1)} ms, p99 ${fmt(percentile(lat, 99), 1)} ms, max ${fmt(lat[lat.length - 1] ?? NaN)} ms`);
  await worker.terminate();
  server.close();
  await services.ingest.drain();
  services.db.close();
  rmSync(root, { recursive: true, force: true });
}

/** One element per line, each a new device: the shape that made the line lookup quadratic. */
function rumFile(target) {
  // Recent, so the import counts every device (an old file's devices are stale at once).
  const t = Math.floor(Date.now() / 1000) - 2 * 86_400;
  const parts = ['<smartLicense>\n'];
  let size = parts[0].length;
  let i = 0;
  while (size < target - 100) {
    const payload = JSON.stringify({
      version: '2.0',
      asset_identification: { report_id: t + i, asset: { name: 'regid.2018-05.com.cisco.C9300,1.0' }, instance: { sudi: { udi_pid: 'C9300-48P', udi_serial_number: `FOCB${i}` } } },
      meta: { entitlement_tag: TAG, software_version: '17.09.02', ha_udi: [{ role: 'Active', sudi: { udi_pid: 'C9300-48P', udi_serial_number: `FOCB${i}` } }] },
      measurements: [{ log_time: t - 5, metric_name: 'ENTITLEMENT', start_time: t, end_time: t + 86_400, sample_interval: 86_400, num_samples: 10, meta: {}, value: { type: 'COUNT', value: '1' } }],
    });
    const el = `<RUMReport><![CDATA[${JSON.stringify({ payload, signature: { signing_type: 'builtin', key: 'k', value: 'Tq2qxHTui7/n675clT/uT0Ih1SjIysZbe5LjQ212nCg=' } })}]]></RUMReport>\n`;
    parts.push(el);
    size += el.length;
    i++;
  }
  parts.push('</smartLicense>\n');
  return { bytes: Buffer.from(parts.join('')), elements: i };
}

/** The device side: 16 devices, each reporting every 50 ms; latency from the scheduled send. */
async function devices({ url, collectorId, token, dist }) {
  const { SimulatedDevice } = await import(join(dist, 'simulator/device-client.js'));
  const list = [];
  for (let i = 0; i < 16; i++) {
    const d = new SimulatedDevice(url, collectorId, { pid: 'C9300-24T', serial: `LOAD${i}` }, () => Date.now());
    const r = await d.register(token);
    if (r.status !== 201) throw new Error(`register: ${r.status}`);
    list.push(d);
  }
  let measuring = false;
  let stopped = false;
  const lat = [];
  parentPort.on('message', (m) => (m === 'measure' ? (measuring = true) : (stopped = true)));
  parentPort.postMessage('ready');
  await Promise.all(list.map(async (d, w) => {
    let due = performance.now() + (50 * w) / list.length;
    for (let n = 0; !stopped; n++) {
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const r = await d.sendReport(d.report(TAG, 1 + (n % 3)));
      if (measuring && !stopped && r.status < 300) lat.push(performance.now() - due);
      due = Math.max(due + 50, performance.now());
    }
  }));
  parentPort.postMessage(lat);
}
