// Shared pieces of the benchmarks: child processes, latency stats, RSS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { generateKeyPair, privateKeyObject } from '../dist/shared/ed25519.js';
import { signRequest, HEADER } from '../dist/device-api/signing.js';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const CLI = `${root}dist/cli/main.js`;

/** Starts a process and resolves when a line matches `ready`; returns the match and the process. */
export function start(cmd, args, env, ready) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`did not start: ${out}`)), 20_000);
    const on = (c) => {
      out += c;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.off('data', on);
        proc.stderr.off('data', on);
        proc.stdout.resume();
        proc.stderr.resume();
        resolve({ proc, match: m });
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

export function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.removeAllListeners('exit');
    proc.on('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** Peak resident set size of a process, in MB (VmHWM). */
export function peakRssMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

export function cpuSplit(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Runs `workers` concurrent loops of `once()` for `seconds`; returns requests/s and latency
 * percentiles in ms. Only answers with the expected status count.
 */
export async function drive({ workers, seconds, once }) {
  const lat = [];
  let ok = 0;
  let bad = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let n = 0; performance.now() < end; n++) {
        const t0 = performance.now();
        const good = await once(w, n);
        lat.push(performance.now() - t0);
        good ? ok++ : bad++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: ok / elapsed, ok, bad, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

export const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/**
 * A steady probe: one cheap request (`GET /healthz`) at a time on its own connection, a new
 * one every `everyMs`. While the server's event loop is blocked the probe in flight waits, so
 * the longest probe answer is the longest stall a client sees (measured outside the server:
 * the product carries no instrument for it). Returns stop(), which resolves to the figures.
 */
export function probeStalls(url, everyMs = 5) {
  const pool = new Pool(url, { connections: 1 });
  let stopped = false;
  const lat = [];
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      const r = await pool.request({ path: '/healthz', method: 'GET' });
      await r.body.text();
      const ms = performance.now() - t0;
      lat.push(ms);
      if (ms < everyMs) await new Promise((res) => setTimeout(res, everyMs - ms));
    }
  })();
  return {
    reset: () => (lat.length = 0),
    async stop() {
      stopped = true;
      await loop;
      await pool.close();
      const sorted = [...lat].sort((a, b) => a - b);
      return { longestStallMs: sorted[sorted.length - 1] ?? NaN, probeP99: percentile(sorted, 99), probes: sorted.length };
    },
  };
}

/** Registers `n` signing devices (for a paced report load) with one token of enough uses. */
export async function registerLoadDevices(pool, token, n, label) {
  const collector = JSON.parse(await (await pool.request({ path: '/device/v1/collector', method: 'GET' })).body.text());
  const devices = [];
  for (let i = 0; i < n; i++) {
    const kp = generateKeyPair();
    const key = privateKeyObject(kp.seed);
    const body = JSON.stringify({ token, udi: { pid: 'LOAD', serial: `${label}-${i}` }, publicKey: kp.publicKey.toString('base64') });
    const ts = String(Math.floor(Date.now() / 1000));
    const r = await pool.request({ path: '/device/v1/register', method: 'POST', body, headers: { [HEADER.timestamp]: ts, [HEADER.signature]: signRequest(key, { method: 'POST', path: '/device/v1/register', collectorId: collector.collectorId, deviceId: '-', timestamp: ts, body }) } });
    const answer = JSON.parse(await r.body.text());
    if (!answer.deviceId) throw new Error(`register: ${r.statusCode} ${JSON.stringify(answer)}`);
    devices.push({ id: answer.deviceId, key });
  }
  return { collectorId: collector.collectorId, devices };
}

/**
 * Devices reporting at a paced total `rate` (reports/s; 0: as fast as they go), each on a
 * fixed schedule: latency counts from the scheduled time, so a stall shows in full rather
 * than hiding behind the requests it delayed. Each answer is kept with when its report was
 * due and its status, so that a bench can place the slow ones in what it timed. Returns
 * reset(), which starts counting afresh and returns what was counted so far, and
 * stop() → [{ due, ms, status }].
 */
export function timedReportLoad(pool, { collectorId, devices }, rate, label, tag) {
  let stopped = false;
  const lat = [];
  const interval = rate > 0 ? (1000 * devices.length) / rate : 0;
  const loops = devices.map(async (d, w) => {
    let due = performance.now() + (interval * w) / devices.length;
    for (let n = 0; !stopped; n++) {
      if (interval) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else due = performance.now();
      const now = Math.floor(Date.now() / 1000);
      const body = JSON.stringify({ reportId: `${label}-${w}-${n}-${now}`, seq: n, generatedAt: now, measurements: [{ tag, count: 1, start: now - 60, end: now }] });
      const ts = String(now);
      const r = await pool.request({ path: '/device/v1/report', method: 'POST', body, headers: { [HEADER.device]: d.id, [HEADER.timestamp]: ts, [HEADER.signature]: signRequest(d.key, { method: 'POST', path: '/device/v1/report', collectorId, deviceId: d.id, timestamp: ts, body }) } });
      await r.body.text();
      lat.push({ due, ms: performance.now() - due, status: r.statusCode });
      due += interval;
    }
  });
  return {
    reset: () => lat.splice(0),
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return lat;
    },
  };
}

/** timedReportLoad summed up: reset() and stop() → { p99, reports, latencies (sorted) }. */
export function reportLoad(pool, loaders, rate, label, tag) {
  const load = timedReportLoad(pool, loaders, rate, label, tag);
  return {
    reset: load.reset,
    async stop() {
      const sorted = (await load.stop()).map((l) => l.ms).sort((a, b) => a - b);
      return { p99: percentile(sorted, 99), reports: sorted.length, latencies: sorted };
    },
  };
}

/** Paced report load for `seconds`, its summary (reportLoad's); with `warmUp`, a second's load first, not counted. */
export async function loadFor(pool, loaders, rate, label, tag, seconds, { warmUp = false } = {}) {
  if (warmUp) {
    const w = reportLoad(pool, loaders, rate, 'warm', tag);
    await new Promise((r) => setTimeout(r, 1000));
    await w.stop();
  }
  const l = reportLoad(pool, loaders, rate, label, tag);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return l.stop();
}
