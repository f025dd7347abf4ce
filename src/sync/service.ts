import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import { DAY_MS, toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Logger } from '../shared/logger.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { AppError, conflict } from '../shared/errors.js';
import type { ExchangeState } from '../exchange/state.js';
import type { ExportResult, ExportService } from '../exchange/export.js';
import type { PartLimits } from '../exchange/usage-payloads.js';
import type { ImportService } from '../exchange/import.js';
import { UpstreamRuns } from './upstream-runs.js';
import { SYNC_BASE, SYNC_VERSION } from './protocol.js';
import { isTransportFailure, type SyncTransport } from './transport.js';
import { errorMessage, printable } from './reply.js';
import { SyncFailure, retrying, upstreamRefusal } from './failure.js';
import { PartInFlight, type PartRun } from './part-in-flight.js';
import { evaluateSyncAlerts } from './sync-alerts.js';
import type { InFlight, SyncError, SyncState } from './sync-state.js';

export interface SyncOptions {
  mode: 'disconnected' | 'connected';
  url: string;
  syncCron: string;
  timeZone: string;
  bundleDir: string;
  maxReportsPerPart: number;
  maxBytesPerPart: number;
  maxResponseBytes: number;
  retry: { attempts: number; baseSeconds: number; maxSeconds: number };
  /** How long one fetch of an answer may wait at the upstream (long poll). */
  waitSeconds: number;
  /** How long a sync waits for the upstream to process one part before it gives up until the next run. */
  maxProcessingSeconds: number;
  /** The signature window: an upstream clock further away than this raises an alert. */
  clockSkewMs: number;
  syncOverdueHours: number;
  unreachableAlertHours: number;
}

export interface SyncProgress {
  startedAt: string;
  step: 'hello' | 'resuming' | 'building' | 'uploading' | 'waiting' | 'applying';
  part: number;
  reportsSent: number;
  /** Reports that waited for an acknowledgement when the sync started. */
  reportsAtStart: number;
}

export interface SyncResult {
  status: 'synced' | 'failed';
  startedAt: string;
  finishedAt: string;
  parts: number;
  reports: { sent: number; accepted: number; rejected: number };
  error: SyncError | null;
}

/**
 * The connected half of the exchange: the same usage bundles as the air gap, sent over HTTPS
 * in bounded parts, each answered and applied (by the import that reads response files) before
 * the next. What makes it safe to cut anywhere:
 * - a part is recorded as in flight before it is posted, and a later sync posts the same file
 *   again (the upstream answers a bundle it has seen with the answer it made) rather than
 *   building another;
 * - the upstream counts each report once by account, UDI and report id, so a report sent in
 *   two parts (a part lost after the upstream applied it) is counted once;
 * - an answer is applied only if it verifies against the pinned upstream key, answers the
 *   part in flight, and is newer than the last applied; ACKs settle only what that part carried.
 */
export class SyncService {
  /** The outcome of the last sync this process ran, for `sync now` to print once it ends. */
  private last: SyncResult | null = null;
  private progressNow: SyncProgress | null = null;
  private runs: UpstreamRuns<SyncResult>;
  private parts: PartInFlight;

  constructor(
    private db: Db,
    private clock: Clock,
    private exchange: ExchangeState,
    private state: SyncState,
    private exporter: ExportService,
    private importer: ImportService,
    private alerts: AlertService,
    private events: EventService,
    private logger: Logger,
    private connect: () => SyncTransport,
    private opts: SyncOptions,
  ) {
    this.runs = new UpstreamRuns(db, clock, logger, {
      what: 'sync', cron: opts.syncCron, timeZone: opts.timeZone,
      scheduled: () => this.enabled,
      ready: () => this.ready(),
      once: (actor) => this.once(actor),
      due: { get: () => this.state.nextDue, set: (at) => (this.state.nextDue = at) },
    });
    this.parts = new PartInFlight(db, clock, exchange, state, importer, alerts, events, logger, <T>(what: string, fn: () => Promise<T>) => this.retrying(what, fn), this.runs.signal, opts);
  }

  /** Retries a step that may pass (the network, a busy upstream), with the configured backoff. */
  private retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retrying(what, fn, this.opts.retry, this.runs.signal, this.logger);
  }

  get enabled(): boolean {
    return this.opts.mode === 'connected';
  }

  /** Starts a sync unless one runs; never two at once. */
  start(actor: string): { started: boolean } {
    return this.runs.start(actor);
  }

  /** Refuses a sync that cannot start, saying what is missing. */
  private ready(): void {
    if (!this.opts.url) throw conflict('no_upstream', 'no upstream is configured: set exchange.connection.url (OUTPOST_EXCHANGE_CONNECTION_URL) to its https address');
    if (!this.exchange.upstreamKeys().some((k) => k.status === 'active')) {
      throw conflict('not_enrolled', 'no upstream key is pinned: enroll first (outpost sync enroll, or the enrollment bundles)');
    }
  }

  /** Runs a sync, or joins the one running. */
  run(actor: string): Promise<SyncResult> {
    return this.runs.run(actor);
  }

  /** The scheduled run (connected mode only); stores when the next one is due, so a missed one runs at start. */
  scheduled(): Promise<SyncResult | null> {
    return this.runs.scheduled();
  }

  /**
   * At start: parts built but never posted, and answers fetched but not applied, by a process
   * that stopped on the way, are removed; the part in flight stays, for the next sync posts it.
   */
  tidy(): void {
    const keep = this.state.inFlight?.file;
    for (const [dir, spare] of [['sent', keep], ['received', undefined]] as const) {
      const folder = join(this.opts.bundleDir, dir);
      if (!existsSync(folder)) continue;
      for (const name of readdirSync(folder)) if (join(folder, name) !== spare) rmSync(join(folder, name), { force: true, recursive: true });
    }
  }

  /** At start: a sync missed while the collector was down runs now (in the background). */
  catchUp(): void {
    if (this.opts.url) this.runs.catchUp();
  }

  /** Stops retrying and waiting; a part cut now is resumed by the next sync. */
  stop(): Promise<void> {
    return this.runs.stop();
  }

  idle(): Promise<void> {
    return this.runs.idle();
  }

  private async once(actor: string): Promise<SyncResult> {
    const startedAt = this.clock.now();
    const result: SyncResult = { status: 'synced', startedAt: toIso(startedAt)!, finishedAt: '', parts: 0, reports: { sent: 0, accepted: 0, rejected: 0 }, error: null };
    this.db.transaction(() => (this.state.lastAttemptAt = startedAt))();
    const pending = this.db.prepare("SELECT count(*) AS n FROM report_pending WHERE destination = 'outpost'").get() as { n: number };
    this.progressNow = { startedAt: result.startedAt, step: 'hello', part: 0, reportsSent: 0, reportsAtStart: pending.n };
    let t: SyncTransport | undefined;
    try {
      t = this.connect();
      const hello = await this.hello(t);
      await this.keysInStep(t, hello.keyId, actor);
      const held = this.state.inFlight;
      if (held) {
        this.step('resuming');
        await this.parts.complete(this.partRun(t, actor, result), held);
      }
      let next: Promise<ExportResult> | null = null;
      try {
        for (;;) {
          const full = next === null && (this.state.fullDevicesAt ?? 0) + DAY_MS <= this.clock.now();
          this.step('building');
          const part = await (next ?? this.buildPart(actor, 0, full ? 'all' : 'waiting'));
          next = null;
          const f: InFlight = { bundleId: part.bundleId, sequence: part.sequence, file: part.file, reports: part.reports, postedAt: null };
          this.db.transaction(() => (this.state.inFlight = f))();
          this.progressNow!.part++;
          // The next part is built while the upstream answers this one: it starts after this
          // part's last report, so it needs none of its ACKs. It is posted only once this one is
          // applied, so one part at most is ever in flight.
          if (part.more && !this.runs.signal.aborted) next = this.buildPart(actor, part.lastRef!, { arrivedSince: startedAt });
          await this.parts.complete(this.partRun(t, actor, result), f);
          if (full) this.db.transaction(() => (this.state.fullDevicesAt = this.clock.now()))();
          if (!next) break;
        }
      } finally {
        // A part built but never posted is a bundle nobody will carry: its number is a gap.
        if (next) void next.then((p) => rmSync(p.file, { force: true }), () => {});
      }
      const now = this.clock.now();
      this.db.transaction(() => {
        this.state.lastSuccessAt = now;
        this.state.lastError = null;
        this.state.unreachableSince = null;
        this.alerts.clear('upstream_unreachable', 'upstream');
        this.alerts.clear('sync_overdue', 'upstream');
        this.events.append('sync.completed', actor, null, null, { parts: result.parts, reports: result.reports });
      })();
    } catch (e) {
      const err = this.describe(e);
      result.status = 'failed';
      result.error = err;
      const unreachable = (e instanceof SyncFailure && e.unreachable) || (isTransportFailure(e) && e.retryable);
      this.db.transaction(() => {
        this.state.lastError = err;
        if (unreachable) this.state.unreachableSince ??= err.at;
        else this.state.unreachableSince = null;
        this.events.append('sync.failed', actor, null, null, { code: err.code, message: err.message, parts: result.parts });
      })();
      this.evaluateAlerts();
      this.logger.warn('sync failed', { code: err.code, error: err.message });
    } finally {
      await t?.close().catch(() => {});
      // The result is recorded before the status stops showing the sync as running: `sync now`
      // reads lastRun as soon as it does, and would print the run before this one.
      result.finishedAt = toIso(this.clock.now())!;
      this.last = result;
      this.progressNow = null;
    }
    return result;
  }

  private buildPart(actor: string, after: number, devices: PartLimits['devices']): Promise<ExportResult> {
    const p = this.exporter.export({ actor, part: { maxReports: this.opts.maxReportsPerPart, maxBytes: this.opts.maxBytesPerPart, devices, after } });
    p.catch(() => {}); // awaited later; a failure then is the sync's, not an unhandled rejection now
    return p;
  }

  /** What a part tells this sync: its steps, and what its applied answer settled. */
  private partRun(t: SyncTransport, actor: string, result: SyncResult): PartRun {
    return {
      t, actor,
      step: (s) => this.step(s),
      applied: (f, acks) => {
        result.parts++;
        result.reports.sent += f.reports;
        result.reports.accepted += acks.accepted;
        result.reports.rejected += acks.rejected;
        if (this.progressNow) this.progressNow.reportsSent += f.reports;
      },
    };
  }

  /** The alerts of connected mode: overdue, unreachable. Cleared in disconnected mode. */
  evaluateAlerts(): void {
    evaluateSyncAlerts(this.db, this.clock, this.state, this.alerts, { ...this.opts, on: this.enabled && this.opts.url !== '' });
  }

  private step(s: SyncProgress['step']): void {
    if (this.progressNow) this.progressNow.step = s;
  }

  private describe(e: unknown): SyncError {
    const at = this.clock.now();
    if (e instanceof AppError || isTransportFailure(e)) return { code: (e as { code: string }).code, message: (e as Error).message, at };
    return { code: 'internal', message: (e as Error).message, at };
  }

  /**
   * Key rotations travel over the connection too. The upstream signs with a key we have not
   * pinned (hello says which; it is not signed, so it only tells us to look): fetch its rotation
   * statement, which the import accepts only if the pinned key signed it. We rotated ours since
   * the upstream last heard: post our statement before any part signed by the new key.
   */
  private async keysInStep(t: SyncTransport, upstreamKeyId: string, actor: string): Promise<void> {
    if (!this.exchange.upstreamKey(upstreamKeyId)) {
      const dir = join(this.opts.bundleDir, 'received');
      mkdirSync(dir, { recursive: true });
      const toFile = join(dir, 'upstream-key-rotation.bundle');
      const r = await this.retrying('fetching the upstream key rotation', () => t.fetchBundle(`${SYNC_BASE}/rotation`, { wait: 0, toFile, maxBytes: 1 << 20 }));
      if (r.status !== 200 || !r.file) {
        throw new SyncFailure('unknown_upstream_key', `the upstream signs with key ${upstreamKeyId}, which is not pinned here, and gives no rotation statement (${errorMessage(r.json) || r.status}): confirm with its operator, then enroll again`);
      }
      try {
        await this.importer.import(r.file, { force: false, actor });
      } finally {
        rmSync(r.file, { force: true });
      }
    }
    const mine = this.db
      .prepare("SELECT id, file, sequence FROM bundles WHERE direction = 'out' AND kind = 'key-rotation' ORDER BY sequence DESC LIMIT 1")
      .get() as { id: string; file: string; sequence: number } | undefined;
    if (mine && this.state.rotationDelivered !== mine.id) {
      const r = await this.retrying('sending our key rotation', () => t.postBundle(`${SYNC_BASE}/rotation`, mine.file));
      if (r.status !== 200) throw upstreamRefusal(`the upstream refused our key rotation statement (sequence ${mine.sequence})`, r);
      this.db.transaction(() => {
        this.state.rotationDelivered = mine.id;
        this.events.append('sync.rotation_delivered', actor, mine.id, null, { sequence: mine.sequence });
      })();
    }
  }

  /** Checks the protocol version and the upstream's clock (an alert only: hello is not signed). */
  private async hello(t: SyncTransport): Promise<{ keyId: string }> {
    const sent = this.clock.now();
    const h = await this.retrying('reaching the upstream', () => t.hello());
    const back = this.clock.now();
    if (!Array.isArray(h.versions) || !h.versions.includes(SYNC_VERSION)) {
      throw new SyncFailure('unsupported_version', `the upstream speaks sync protocol version(s) ${printable(JSON.stringify(h.versions)).slice(0, 100)}; this collector speaks ${SYNC_VERSION}: upgrade the older side`);
    }
    const skew = Date.parse(h.time) - (sent + back) / 2;
    if (Number.isFinite(skew) && Math.abs(skew) > this.opts.clockSkewMs) {
      this.alerts.raise('upstream_clock_skew', {
        subject: 'upstream', severity: 'warning',
        message: `the upstream's clock is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} this collector's: more than the ${this.opts.clockSkewMs / 1000} s signature window`,
        details: { skewMs: Math.round(skew), upstreamTime: h.time },
      });
    } else this.alerts.clear('upstream_clock_skew', 'upstream');
    return h;
  }

  status() {
    const running = this.progressNow;
    // Counting waiting reports scans them: only when no sync runs (a drain polls the status
    // often). While one runs, the count is what waited at its start less what it has settled,
    // and the oldest is the first waiting report's (read from the key, not a scan).
    const waiting = running
      ? {
          n: Math.max(0, running.reportsAtStart - running.reportsSent),
          oldest: (this.db.prepare("SELECT since FROM report_pending WHERE destination = 'outpost' ORDER BY report_id LIMIT 1").pluck().get() as number | undefined) ?? null,
        }
      : (this.db.prepare("SELECT count(*) AS n, min(since) AS oldest FROM report_pending WHERE destination = 'outpost'").get() as { n: number; oldest: number | null });
    const f = this.state.inFlight;
    const err = this.state.lastError;
    return {
      mode: this.opts.mode,
      upstream: this.opts.url || null,
      protocolVersion: SYNC_VERSION,
      running: running !== null,
      progress: running,
      lastAttemptAt: toIso(this.state.lastAttemptAt),
      lastSuccessAt: toIso(this.state.lastSuccessAt),
      lastError: err ? { code: err.code, message: err.message, at: toIso(err.at) } : null,
      nextRunAt: this.enabled ? toIso(this.state.nextDue) : null,
      unreachableSince: toIso(this.state.unreachableSince),
      inFlight: f ? { bundleId: f.bundleId, sequence: f.sequence, reports: f.reports, postedAt: toIso(f.postedAt) } : null,
      waiting: { reports: waiting.n, oldestSince: toIso(waiting.oldest), ...(running ? { estimated: true } : {}) },
      lastRun: this.last,
    };
  }
}

