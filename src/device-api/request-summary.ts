import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../shared/logger.js';
import type { IngestService } from '../usage/ingest.js';
import type { RefusalCounter } from '../events/refusals.js';
import { HEADER, REGISTRATION_DEVICE_ID } from './signing.js';

/**
 * Durations kept per interval to compute the percentiles: past this, one in two is kept (a
 * sample is enough for p50/p99, and a flood costs bounded memory).
 */
const MAX_SAMPLES = 20_000;
/** Distinct device ids counted per interval; past this the count says "at least". */
const MAX_DEVICES = 100_000;

const codeOf = (e: unknown): string => String((e as { code?: unknown } | null)?.code ?? 'internal');

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Device requests are thousands a minute: instead of one log line each, one line per interval
 * (none when there was no traffic) says how many came, their status classes, what became of
 * the reports in them (accepted, duplicate, refused by reason), the latency's p50 and p99 and
 * how many distinct devices sent them.
 */
export class DeviceRequestSummary {
  private requests = 0;
  private statuses: Record<string, number> = {};
  private reports = { accepted: 0, duplicate: 0 };
  private refused: Record<string, number> = {};
  private durations: number[] = [];
  private keepEvery = 1;
  private seen = 0;
  private devices = new Set<string>();
  private since: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.since = now();
  }

  /**
   * Listens to what the ingest stores or refuses and to the security refusals, after any
   * observer already there (the metrics).
   */
  observe(ingest: IngestService, refusals: RefusalCounter): this {
    const ingested = ingest.observer;
    ingest.observer = (results, error) => {
      ingested?.(results, error);
      if (results) for (const r of results) this.reports[r.status === 'duplicate' ? 'duplicate' : 'accepted']++;
      else this.refuse(codeOf(error));
    };
    const refusing = refusals.observer;
    refusals.observer = (reason) => {
      refusing?.(reason);
      this.refuse(reason);
    };
    return this;
  }

  /** The device handler, counted: each request's status class, duration and device. */
  wrap(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const started = performance.now();
      res.once('close', () => this.record(res.writableFinished ? res.statusCode : 0, performance.now() - started, req.headers[HEADER.device]));
      handler(req, res);
    };
  }

  record(status: number, ms: number, device: unknown): void {
    this.requests++;
    const cls = status === 0 ? 'aborted' : `${Math.floor(status / 100)}xx`;
    this.statuses[cls] = (this.statuses[cls] ?? 0) + 1;
    if (this.seen++ % this.keepEvery === 0) {
      this.durations.push(ms);
      if (this.durations.length >= MAX_SAMPLES) {
        this.durations = this.durations.filter((_, i) => i % 2 === 0);
        this.keepEvery *= 2;
      }
    }
    // Registrations carry a placeholder, not a device; the id a sender chose is bounded in length, the set in size.
    const id = typeof device === 'string' && device.length <= 80 && device !== REGISTRATION_DEVICE_ID ? device : '';
    if (id && this.devices.size < MAX_DEVICES) this.devices.add(id);
  }

  private refuse(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }

  /** Writes the interval's line if there was traffic, and starts the next interval. */
  flush(): void {
    const at = this.now();
    const seconds = Math.round((at - this.since) / 1000);
    this.since = at;
    const refusedAny = Object.keys(this.refused).length > 0;
    if (this.requests > 0 || refusedAny || this.reports.accepted + this.reports.duplicate > 0) {
      const sorted = this.durations.sort((a, b) => a - b);
      this.logger.info('device requests', {
        seconds,
        requests: this.requests,
        status: this.statuses,
        reports: { ...this.reports, refused: this.refused },
        p50Ms: Math.round(percentile(sorted, 50) * 10) / 10,
        p99Ms: Math.round(percentile(sorted, 99) * 10) / 10,
        devices: this.devices.size,
        ...(this.devices.size >= MAX_DEVICES ? { devicesAtLeast: true } : {}),
      });
    }
    this.requests = 0;
    this.statuses = {};
    this.reports = { accepted: 0, duplicate: 0 };
    this.refused = {};
    this.durations = [];
    this.keepEvery = 1;
    this.seen = 0;
    this.devices = new Set();
  }

  /** A line every `seconds` while there is traffic; the timer does not keep the process alive. */
  start(seconds: number): void {
    this.stop(false);
    this.since = this.now();
    this.timer = setInterval(() => this.flush(), seconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer; the requests of the last, partial interval get their line unless `flush` is false. */
  stop(flush = true): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (flush) this.flush();
  }
}
