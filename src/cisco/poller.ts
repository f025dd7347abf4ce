import { readFileSync } from 'node:fs';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Logger } from '../shared/logger.js';
import type { EventService } from '../events/service.js';
import type { RumImporter, RumImportOptions } from '../rum/import.js';
import { AppError } from '../shared/errors.js';
import type { PolledDevice, PolledDeviceService } from './polled-devices.js';
import { DeviceClient, DeviceError, presentedFingerprint } from './device-client.js';
import { arrayElements } from './json-elements.js';
import { parseRumReport } from '../rum/report.js';
import { throttled, type OnProgress } from '../shared/progress.js';

export interface PollOptions {
  concurrency: number;
  timeoutMs: number;
  retries: number;
  /** The PEM text of cisco.caFile, if set. */
  ca?: string | undefined;
  /** The RUM rules the reports are stored by (see RumImporter). */
  rum: Omit<RumImportOptions, 'vaId' | 'actor' | 'skipInvalid'>;
}

export interface DevicePoll {
  id: string;
  name: string;
  ok: boolean;
  accepted: number;
  replaced: number;
  duplicate: number;
  error: { code: string; message: string } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Between the starts of two poll workers. */
const RAMP_MS = 40;

/**
 * Polls the IOS-XE devices: closes each one's open RUM reports, fetches them all, and stores
 * them by the RUM rules (a report id once; a grown report replaces its earlier copy; the exact
 * JSON the device gave kept as the original). A bounded number of devices at once, each with
 * its own timeout and retries: one slow or failing device never delays the others. One run at a
 * time; a second request joins it.
 */
export class DevicePoller {
  private running: Promise<DevicePoll[]> | null = null;

  constructor(
    private db: Db,
    private clock: Clock,
    private devices: PolledDeviceService,
    private rum: RumImporter,
    private events: EventService,
    private logger: Logger,
    private o: PollOptions,
  ) {}

  /**
   * Devices are fetched many at once (a slow device holds only its own slot) but stored one at
   * a time, each store followed by a pause three times as long as it took (at most 150 ms), as
   * the other long jobs are paced: answers that arrive together were otherwise stored back to
   * back in one turn of the main thread, and device reports waited behind them. bench:poll,
   * 1,000 devices: with a pause as long as the store, ingest p99 63 ms during the poll; three
   * times as long, 33 ms, and the poll 11.0 s instead of 8.5 s.
   */
  private storeQueue: Promise<unknown> = Promise.resolve();
  private storing<T>(work: () => Promise<T>): Promise<T> {
    const run = this.storeQueue.then(async () => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        await sleep(Math.min(150, 3 * (performance.now() - started)));
      }
    });
    this.storeQueue = run.catch(() => {});
    return run;
  }

  static caFrom(file: string): string | undefined {
    return file ? readFileSync(file, 'utf8') : undefined;
  }

  /** `onProgress` hears of each device polled; a caller that joins a poll already running hears nothing. */
  poll(actor: string, only?: string, onProgress?: OnProgress): Promise<DevicePoll[]> {
    if (this.running) return this.running;
    const targets = only ? [this.devices.get(only)] : this.devices.list();
    const run = this.pollAll(targets, actor, onProgress).finally(() => (this.running = null));
    this.running = run;
    return run;
  }

  private async pollAll(targets: PolledDevice[], actor: string, onProgress?: OnProgress): Promise<DevicePoll[]> {
    const results: DevicePoll[] = [];
    let next = 0;
    const told = onProgress && throttled(onProgress);
    told?.({ phase: 'poll', done: 0, total: targets.length });
    // The workers start one after another, not together: each begins with a TLS handshake on
    // the main thread, and all of them at once held device ingest for tens of milliseconds.
    const worker = async (i: number) => {
      await sleep(i * RAMP_MS);
      while (next < targets.length) {
        const d = targets[next++]!;
        results.push(await this.pollOne(d, actor));
        told?.({ phase: 'poll', done: results.length, total: targets.length });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, targets.length) }, (_, i) => worker(i)));
    told?.flush();
    const failed = results.filter((r) => !r.ok);
    this.db.transaction(() =>
      this.events.append('cisco.polled', actor, null, null, {
        devices: results.length, failed: failed.length, accepted: results.reduce((n, r) => n + r.accepted, 0), replaced: results.reduce((n, r) => n + r.replaced, 0),
        ...(failed.length ? { failures: failed.slice(0, 20).map((f) => ({ id: f.id, code: f.error!.code })) } : {}),
      }),
    )();
    return results.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Tries a device without storing anything: can it be reached, which certificate does it
   * present (its fingerprint, to compare with its owner), is it trusted as configured, and do
   * the username and password work. With `confirm` equal to the fingerprint presented, the
   * device is pinned to it.
   */
  async test(id: string, actor: string, confirm?: string): Promise<{ id: string; presented: string | null; trusted: boolean; authenticated: boolean; pinned: boolean; error: { code: string; message: string } | null }> {
    const d = this.devices.get(id);
    const client = new DeviceClient(this.devices.target(d.id), { timeoutMs: this.o.timeoutMs, ca: this.o.ca });
    let error: { code: string; message: string } | null = null;
    try {
      await client.listReports();
    } catch (e) {
      if (!(e instanceof DeviceError)) throw e;
      error = { code: e.code, message: e.message };
    } finally {
      await client.close().catch(() => {});
    }
    const presented = client.presented ?? (error?.code === 'tls' ? await presentedFingerprint(d.host, d.port, this.o.timeoutMs).catch(() => null) : null);
    let pinned = false;
    if (confirm) {
      if (!presented || confirm.toLowerCase() !== presented) {
        throw new AppError(400, 'fingerprint_mismatch', `the device presented ${presented ?? 'no certificate'}, not ${confirm}: nothing was pinned`);
      }
      this.devices.edit(d.id, { tls: { mode: 'pin', pin: presented } }, actor);
      pinned = true;
    }
    return { id: d.id, presented, trusted: error?.code !== 'tls', authenticated: error === null, pinned, error };
  }

  /** Remembers which collector device the polled device's reports belong to: where its ACKs go back. */
  private linkDevice(polledId: string, element: string): void {
    const r = parseRumReport(element);
    if ('reason' in r) return;
    const deviceId = this.db.prepare('SELECT device_id FROM device_udis WHERE udi = ?').pluck().get(`${r.udi.pid}:${r.udi.serial}`) as string | undefined;
    if (deviceId) this.db.prepare('UPDATE polled_devices SET device_id = ? WHERE id = ? AND device_id IS NOT ?').run(deviceId, polledId, deviceId);
  }

  private async pollOne(d: PolledDevice, actor: string): Promise<DevicePoll> {
    const out: DevicePoll = { id: d.id, name: d.name, ok: false, accepted: 0, replaced: 0, duplicate: 0, error: null };
    const started = this.clock.now();
    let first: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const client = new DeviceClient(this.devices.target(d.id), { timeoutMs: this.o.timeoutMs, ca: this.o.ca });
      try {
        await client.closeReports();
        const text = await client.allReports();
        await this.storing(async () => {
          const elements = arrayElements(text, 'usage');
          if (!Array.isArray(elements)) throw new DeviceError('malformed', `${d.host}:${d.port} answered all-reports with ${elements.reason}`, false);
          if (elements.length) {
            const r = await this.rum.importPolled(elements, { ...this.o.rum, vaId: d.vaId, actor, skipInvalid: false, fileName: `${d.name} (${d.host}:${d.port})` });
            Object.assign(out, { accepted: r.accepted, replaced: r.replaced, duplicate: r.duplicate });
            first = elements[0];
          }
        });
        out.ok = true;
        break;
      } catch (e) {
        const retryable = e instanceof DeviceError && e.retryable;
        if (retryable && attempt < this.o.retries) {
          await sleep(Math.min(30_000, 500 * 2 ** attempt));
          continue;
        }
        out.error = e instanceof DeviceError || e instanceof AppError ? { code: (e as { code: string }).code, message: e.message } : { code: 'internal', message: (e as Error).message };
        if (!(e instanceof DeviceError || e instanceof AppError)) this.logger.error('polling a device failed', { device: d.id, error: (e as Error).message });
        break;
      } finally {
        await client.close().catch(() => {});
      }
    }
    // The link and the status in one commit: each commit waits on the disk, and ingest waits behind it.
    this.db.transaction(() => {
      if (first) this.linkDevice(d.id, first);
      this.db
        .prepare('UPDATE polled_devices SET last_poll_at = ?, last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END, last_error = ?, reports = reports + ? WHERE id = ?')
        .run(started, out.ok ? 1 : 0, this.clock.now(), out.error ? `${out.error.message} (${out.error.code})` : null, out.accepted, d.id);
    })();
    return out;
  }
}
