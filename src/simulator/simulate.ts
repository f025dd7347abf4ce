import type { OnProgress } from '../shared/progress.js';
import { request } from 'undici';
import { SimulatedDevice } from './device-client.js';

export interface SimulateOptions {
  url: string;
  token: string;
  devices: number;
  reports: number;
  tag: string;
  concurrency: number;
  batch: number;
}

export interface SimulateResult {
  devices: number;
  reportsSent: number;
  accepted: number;
  duplicate: number;
  failed: number;
  seconds: number;
}

/** Registers N devices with one token, then each sends M signed reports (in batches if asked). */
export async function simulate(o: SimulateOptions, progress: (line: string) => void = () => {}, onProgress: OnProgress = () => {}): Promise<SimulateResult> {
  const started = Date.now();
  const collectorId = await fetchCollectorId(o.url);
  const runId = Date.now().toString(36).toUpperCase();
  const devices = Array.from({ length: o.devices }, (_, i) => new SimulatedDevice(o.url, collectorId, { pid: 'SIM-9300-24', serial: `SIM${runId}${String(i).padStart(5, '0')}` }));
  const result: SimulateResult = { devices: 0, reportsSent: 0, accepted: 0, duplicate: 0, failed: 0, seconds: 0 };
  await pool(devices, o.concurrency, async (d) => {
    const r = await d.register(o.token);
    if (r.status !== 201 && r.status !== 200) throw new Error(`registration refused: ${JSON.stringify(r.body)}`);
    result.devices++;
    onProgress({ phase: 'register', done: result.devices, total: o.devices, unit: 'devices' });
  });
  progress(`${result.devices} devices registered`);
  await pool(devices, o.concurrency, async (d, i) => {
    const now = Math.floor(Date.now() / 1000);
    for (let sent = 0; sent < o.reports; sent += o.batch) {
      const n = Math.min(o.batch, o.reports - sent);
      const reports = Array.from({ length: n }, (_, k) => d.report(o.tag, 1 + ((i + sent + k) % 4), now));
      const r = n === 1 && o.batch === 1 ? await d.sendReport(reports[0]!) : (await d.sendKeeping(reports)).response;
      result.reportsSent += n;
      onProgress({ phase: 'send', done: result.reportsSent, total: o.devices * o.reports, unit: 'reports' });
      if (r.status !== 200) {
        result.failed += n;
        continue;
      }
      const statuses: string[] = n === 1 && o.batch === 1 ? [r.body.status] : r.body.results.map((x: { status: string }) => x.status);
      for (const s of statuses) s === 'accepted' ? result.accepted++ : result.duplicate++;
    }
  });
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

async function fetchCollectorId(url: string): Promise<string> {
  const res = await request(url + '/device/v1/collector');
  const body = (await res.body.json()) as { collectorId?: string };
  if (res.statusCode !== 200 || !body.collectorId) throw new Error(`${url} does not answer as an Outpost collector`);
  return body.collectorId;
}

export async function pool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}
