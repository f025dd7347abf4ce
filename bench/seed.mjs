// Seeds a collector database with a VA of N devices (with their per-device usage) and times
// the compliance read of that VA, in the service and over HTTP.
import http from 'node:http';
import { request } from 'undici';
import { loadConfig } from '../dist/config/load.js';
import { buildServices, createRequestHandler } from '../dist/main.js';
import { createLogger } from '../dist/shared/logger.js';

const TAGS = [
  'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896',
  'regid.2017-03.com.cisco.advantagek9,1.0_bd1da96e-ec1d-412b-a50e-53846b347d53',
  'regid.2018-05.com.cisco.WLC_9500C,1.0_85665885-b865-4e32-8184-5510412fcb54',
];

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function seedCompliance(dataDir, n) {
  const config = loadConfig({ env: {}, overrides: { dataDir, http: { port: 0 } } });
  const s = buildServices(config, { logger: createLogger('error', true) });
  const va = s.accounts.createVa({ name: 'Big' }, 'bench');
  const now = Date.now();
  const dev = s.db.prepare(
    `INSERT INTO devices (id, va_id, udi_pid, udi_serial, hostname, software_version, public_key, status, source, registered_at, last_seen_at)
     VALUES (?, ?, 'C9300-48P', ?, ?, '17.9', NULL, 'active', 'rum', ?, ?)`,
  );
  const use = s.db.prepare('INSERT INTO device_usage (device_id, tag, count, period_end, report_pk) VALUES (?, ?, ?, ?, 0)');
  s.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = `dev_bench${String(i).padStart(7, '0')}`;
      dev.run(id, va.id, `SEED${i}`, `sw${i}`, now, now);
      for (let t = 0; t < TAGS.length; t++) use.run(id, TAGS[t], 1 + ((i + t) % 3), now);
    }
    // The counters as ingest would have kept them; compliance verify then agrees (checked below).
    s.licenses.ledger.replaceAll(s.licenses.ledger.recompute());
  })();
  for (const tag of TAGS.slice(0, 2)) {
    s.licenses.addLine({ vaId: va.id, tag, displayName: tag.split(',')[0], kind: 'subscription', quantity: n, startsAt: now - 1e9, endsAt: now + 1e10 }, 'bench');
  }
  const verify = s.licenses.verify('bench');
  if (verify.drift.length) throw new Error('seeded counters drifted');

  const samples = 50;
  const serviceTimes = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    s.licenses.compliance(va.id);
    serviceTimes.push(performance.now() - t0);
  }
  const server = http.createServer(createRequestHandler(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/api/v1/virtual-accounts/${va.id}/compliance`;
  const httpTimes = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const res = await request(url);
    await res.body.json();
    httpTimes.push(performance.now() - t0);
  }
  await new Promise((r) => server.close(r));
  s.db.close();
  return { devices: n, samples, serviceMs: median(serviceTimes), httpMs: median(httpTimes) };
}
