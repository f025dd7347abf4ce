import { LAST_BACKUP_SQL } from '../backup/last-backup.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import type { LicenseService } from '../licenses/service.js';
import type { IngestService } from '../usage/ingest.js';
import type { RefusalCounter } from '../events/refusals.js';
import type { EventService } from '../events/service.js';
import type { Destinations } from '../usage/destinations.js';
import type { WalCheckpointer } from '../store/wal-checkpointer.js';

export interface MetricsSources {
  config: Config;
  db: Db;
  clock: Clock;
  licenses: LicenseService;
  ingest: IngestService;
  refusals: RefusalCounter;
  events: EventService;
  destinations: Destinations;
  walCheckpoints?: WalCheckpointer;
}

/** Counting devices costs an index walk (tens of ms at a million): done at most this often. */
const DEVICE_COUNT_TTL_MS = 30_000;

const DEVICE_ROUTES = new Set(['/device/v1/report', '/device/v1/reports', '/device/v1/register', '/device/v1/collector']);

/**
 * The collector's Prometheus metrics, in a registry of its own: tests build many collectors in
 * one process, and prom-client's global registry would make them share (and clash). Counters
 * are moved by the hooks set here on the ingest, the group commit, the refusal counter and the
 * event trail; gauges are read at scrape time from small or indexed tables, never by walking
 * the reports.
 */
export class CollectorMetrics {
  readonly registry = new Registry();
  private defaultsOn = false;
  private deviceCounts: { at: number; rows: { status: string; n: number }[] } | null = null;

  private readonly reports = new Counter({ name: 'outpost_reports_total', help: 'Device reports stored, by outcome (accepted: new; duplicate: already held)', labelNames: ['status'], registers: [this.registry] });
  private readonly refused = new Counter({
    name: 'outpost_report_requests_refused_total',
    help: 'Device API requests refused, by reason (the error code: bad signatures, stale timestamps, unknown devices, invalid reports)',
    labelNames: ['reason'], registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'outpost_device_request_duration_seconds', help: 'Device API request duration, from arrival to the last byte of the answer (a report waits for its group commit)',
    labelNames: ['route', 'code'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  private readonly commitSize = new Histogram({
    name: 'outpost_group_commit_jobs', help: 'Requests written by one group commit (one transaction, one fsync)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registers: [this.registry],
  });
  private readonly fsync = new Histogram({
    name: 'outpost_wal_fsync_seconds', help: "Duration of the WAL's fdatasync after a group commit",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
  });
  private readonly walCheckpoint = new Histogram({
    name: 'outpost_wal_checkpoint_seconds', help: "Duration of a WAL checkpoint on the checkpoint worker's thread (copying frames into the database file and syncing it)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
  });
  private readonly syncs = new Counter({ name: 'outpost_sync_attempts_total', help: 'Connected syncs with the upstream, by upstream kind and outcome', labelNames: ['upstream', 'outcome'], registers: [this.registry] });
  private readonly polls = new Counter({ name: 'outpost_poll_attempts_total', help: 'Polls of IOS-XE devices, by outcome (one per device polled)', labelNames: ['outcome'], registers: [this.registry] });
  private readonly pruned = new Counter({ name: 'outpost_reports_pruned_total', help: 'Raw reports pruned by retention (each leaves a tombstone), by source', labelNames: ['source'], registers: [this.registry] });
  private readonly exports = new Counter({ name: 'outpost_export_attempts_total', help: 'Usage files written, by kind (bundle: for an Outpost upstream; portal: for the vendor portal) and outcome', labelNames: ['kind', 'outcome'], registers: [this.registry] });

  constructor(private readonly s: MetricsSources) {
    const r = [this.registry];
    const q = (sql: string) => s.db.prepare(sql);
    // Statements prepared on first scrape: a store closed before then costs nothing here.
    const lazy = <T>(make: () => T) => {
      let v: T | undefined;
      return () => (v ??= make());
    };
    const alertsOpen = lazy(() => q('SELECT kind, count(*) AS n FROM alerts WHERE cleared_at IS NULL GROUP BY kind'));
    const pending = lazy(() => q('SELECT count(*) AS n, min(since) AS oldest FROM report_pending WHERE destination = ?'));
    const polled = lazy(() => q(`SELECT CASE WHEN last_poll_at IS NULL THEN 'never_polled'
      WHEN last_success_at IS NOT NULL AND last_success_at >= last_poll_at THEN 'ok' ELSE 'failing' END AS state, count(*) AS n
      FROM polled_devices GROUP BY state`));
    const meta = lazy(() => q('SELECT value FROM meta WHERE key = ?').pluck());
    const lastBundle = lazy(() => q("SELECT max(created_at) FROM bundles WHERE direction = 'out' AND kind = 'usage'").pluck());
    const lastPortal = lazy(() => q('SELECT max(created_at) FROM portal_uploads').pluck());
    const now = () => s.clock.now();
    const self = this;

    new Gauge({
      name: 'outpost_devices', help: 'Devices by status (counted at most every 30 s)', labelNames: ['status'], registers: r,
      collect() {
        this.reset();
        for (const row of self.countDevices()) this.set({ status: row.status }, row.n);
      },
    });
    // A group read in one query: the first gauge's collect() fills the others, which must come
    // after it in the registry (prom-client renders, and so collects, in registration order).
    const after = <T extends Gauge>(first: Gauge, ...rest: T[]) => {
      for (const g of rest) this.registry.registerMetric(g);
      return first;
    };
    const usageGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['va_id', 'va', 'tag'], registers: [] });
    const inUse = usageGauge('outpost_license_in_use', 'Licenses in use per virtual account and tag');
    const owned = usageGauge('outpost_license_owned', 'Licenses owned now per virtual account and tag (absent when unlimited)');
    const short = usageGauge('outpost_license_shortfall', 'Licenses in use beyond those owned, per virtual account and tag (0 when covered)');
    after(new Gauge({
      name: 'outpost_license_tags', help: 'Virtual account and tag pairs by compliance status (shortage, expired, not_authorized, in_compliance)', labelNames: ['status'], registers: r,
      collect() {
        // One indexed read per VA of its usage rows and lines, whatever the number of devices.
        this.reset();
        inUse.reset();
        owned.reset();
        short.reset();
        const counts: Record<string, number> = { in_compliance: 0, shortage: 0, expired: 0, not_authorized: 0 };
        for (const va of s.licenses.complianceAll()) {
          for (const t of va.tags) {
            const l = { va_id: va.vaId, va: va.vaName, tag: t.tag };
            inUse.set(l, t.inUse);
            if (t.owned !== null) owned.set(l, t.owned);
            short.set(l, t.short);
            counts[t.status] = (counts[t.status] ?? 0) + 1;
          }
        }
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    }), inUse, owned, short);
    new Gauge({
      name: 'outpost_alerts_open', help: 'Open alerts by kind', labelNames: ['kind'], registers: r,
      collect() {
        this.reset();
        for (const row of alertsOpen().all() as { kind: string; n: number }[]) this.set({ kind: row.kind }, row.n);
      },
    });
    const oldest = new Gauge({ name: 'outpost_reports_unacknowledged_oldest_age_seconds', help: 'Age of the oldest report waiting for an acknowledgement, per destination (0 when none waits)', labelNames: ['destination'], registers: [] });
    after(new Gauge({
      name: 'outpost_reports_unacknowledged', help: 'Reports waiting for an acknowledgement, per destination', labelNames: ['destination'], registers: r,
      collect() {
        this.reset();
        oldest.reset();
        for (const d of s.destinations.used()) {
          const row = pending().get(d) as { n: number; oldest: number | null };
          this.set({ destination: d }, row.n);
          oldest.set({ destination: d }, row.oldest === null ? 0 : Math.max(0, (now() - row.oldest) / 1000));
        }
      },
    }), oldest);
    new Gauge({
      name: 'outpost_polled_devices', help: 'IOS-XE devices polled by the collector, by state of their last poll (ok, failing, never_polled)', labelNames: ['state'], registers: r,
      collect() {
        this.reset();
        const rows = new Map((polled().all() as { state: string; n: number }[]).map((x) => [x.state, x.n]));
        for (const state of ['ok', 'failing', 'never_polled']) this.set({ state }, rows.get(state) ?? 0);
      },
    });
    const since = (at: number | null | undefined) => (at ? Math.max(0, (now() - at) / 1000) : null);
    const syncSince = new Gauge({ name: 'outpost_sync_seconds_since_success', help: 'Seconds since the last successful connected sync (absent before the first; connected mode only)', labelNames: ['upstream'], registers: [] });
    after(new Gauge({
      name: 'outpost_sync_last_success_timestamp_seconds', help: 'When the last connected sync succeeded, Unix seconds (0: never; connected mode only)', labelNames: ['upstream'], registers: r,
      collect() {
        this.reset();
        syncSince.reset();
        if (s.config.exchange.mode !== 'connected') return;
        const upstream = s.config.exchange.upstream.kind;
        const raw = meta().get(upstream === 'cisco' ? 'cssm.last_success_at' : 'sync.last_success_at') as string | undefined;
        const at = raw === undefined ? null : Number(raw);
        this.set({ upstream }, at ? at / 1000 : 0);
        const ago = since(at);
        if (ago !== null) syncSince.set({ upstream }, ago);
      },
    }), syncSince);
    const exportSince = new Gauge({ name: 'outpost_export_seconds_since_success', help: 'Seconds since the last usage file was written, by kind (absent before the first)', labelNames: ['kind'], registers: [] });
    after(new Gauge({
      name: 'outpost_export_last_success_timestamp_seconds', help: 'When the last usage file was written, by kind, Unix seconds (0: never)', labelNames: ['kind'], registers: r,
      collect() {
        this.reset();
        exportSince.reset();
        for (const [kind, at] of [['bundle', lastBundle().get()], ['portal', lastPortal().get()]] as [string, number | null][]) {
          this.set({ kind }, at ? at / 1000 : 0);
          const ago = since(at);
          if (ago !== null) exportSince.set({ kind }, ago);
        }
      },
    }), exportSince);
    const lastBackup = lazy(() => q(LAST_BACKUP_SQL).pluck());
    new Gauge({
      name: 'outpost_backup_last_success_timestamp_seconds', help: 'When the last backup was written, Unix seconds (0: never)', registers: r,
      collect() {
        const at = lastBackup().get() as number | undefined;
        this.set(at ? at / 1000 : 0);
      },
    });
    new Gauge({
      name: 'outpost_info', help: 'The collector: its exchange mode and upstream kind (always 1)', labelNames: ['mode', 'upstream'], registers: r,
      collect() {
        this.reset();
        this.set({ mode: s.config.exchange.mode, upstream: s.config.exchange.upstream.kind }, 1);
      },
    });

    // The hooks: each source calls its observer, if one is set, after the fact.
    s.ingest.observer = (results, error) => {
      if (results) for (const x of results) this.reports.inc({ status: x.status });
      else this.refused.inc({ reason: codeOf(error) });
    };
    s.refusals.observer = (reason) => this.refused.inc({ reason });
    if (s.walCheckpoints) s.walCheckpoints.observer = (ms) => this.walCheckpoint.observe(ms / 1000);
    const wal = s.walCheckpoints;
    new Gauge({
      name: 'outpost_wal_frames', help: 'Frames in the WAL at the last checkpoint (it restarts from the beginning once all are copied); absent until the first', registers: r,
      collect() {
        const frames = wal?.state().walFrames;
        if (frames !== null && frames !== undefined) this.set(frames);
      },
    });
    s.ingest.commits.observer = (jobs, fsyncSeconds) => {
      this.commitSize.observe(jobs);
      if (fsyncSeconds !== null) this.fsync.observe(fsyncSeconds);
    };
    s.events.observer = (type, details) => this.onEvent(type, details);
  }

  /** The exposition text. prom-client's process metrics (CPU, memory, event-loop delay, GC) join at the first scrape. */
  async metrics(): Promise<string> {
    if (!this.defaultsOn) {
      // They start timers and observers that live as long as the process: only a collector
      // that is scraped pays for them.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
      this.defaultsOn = true;
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The device API's handler, timed: a histogram per route and status code. */
  timed(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const end = this.latency.startTimer();
      res.once('close', () => {
        const path = (req.url ?? '').split('?')[0]!;
        end({ route: DEVICE_ROUTES.has(path) ? path : 'other', code: String(res.statusCode) });
      });
      handler(req, res);
    };
  }

  private countDevices(): { status: string; n: number }[] {
    const at = this.s.clock.now();
    if (!this.deviceCounts || at - this.deviceCounts.at >= DEVICE_COUNT_TTL_MS || at < this.deviceCounts.at) {
      const one = this.s.db.prepare('SELECT count(*) FROM devices WHERE status = ?').pluck();
      this.deviceCounts = { at, rows: ['active', 'stale', 'deregistered'].map((status) => ({ status, n: one.get(status) as number })) };
    }
    return this.deviceCounts.rows;
  }

  private onEvent(type: string, d: Record<string, unknown>): void {
    switch (type) {
      case 'sync.completed': return void this.syncs.inc({ upstream: 'outpost', outcome: 'success' });
      case 'sync.failed': return void this.syncs.inc({ upstream: 'outpost', outcome: 'failure' });
      case 'cisco.cloud_synced': return void this.syncs.inc({ upstream: 'cisco', outcome: 'success' });
      case 'cisco.cloud_sync_failed': return void this.syncs.inc({ upstream: 'cisco', outcome: 'failure' });
      case 'exchange.exported': return void this.exports.inc({ kind: 'bundle', outcome: 'success' });
      case 'cisco.portal_exported': return void this.exports.inc({ kind: 'portal', outcome: 'success' });
      case 'exchange.export_failed': return void this.exports.inc({ kind: 'bundle', outcome: 'failure' });
      case 'cisco.portal_export_failed': return void this.exports.inc({ kind: 'portal', outcome: 'failure' });
      case 'reports.pruned':
        this.pruned.inc({ source: 'device' }, Number(d.device) || 0);
        this.pruned.inc({ source: 'rum' }, Number(d.rum) || 0);
        return;
      case 'cisco.polled': {
        const devices = Number(d.devices) || 0;
        const failed = Number(d.failed) || 0;
        this.polls.inc({ outcome: 'success' }, devices - failed);
        this.polls.inc({ outcome: 'failure' }, failed);
        return;
      }
    }
  }
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  // Error codes are the collector's own words; anything else (a driver's message) is not a label.
  return typeof code === 'string' && /^[a-z][a-z0-9_]{0,40}$/.test(code) ? code : 'storage_or_internal';
}
