import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { newId } from '../shared/ids.js';
import { builtWorker } from '../shared/worker.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Identity } from '../identity/identity.js';
import type { EventService } from '../events/service.js';
import type { Checkpoint } from '../events/checkpoint.js';
import type { AlertService } from '../alerts/service.js';
import type { AccountService } from '../accounts/service.js';
import { assembleBundle, identitySigner, writePayloads, type ListedPayload, type WrittenBundle } from './write.js';
import { hostnameMapper, usagePayloads, type PartLimits, type PartReach } from './usage-payloads.js';
import type { ExchangeState } from './state.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import { PAYLOAD } from './records.js';
import { periodOf } from '../time/zone.js';
import { throttled, type OnProgress, type ProgressEvent } from '../shared/progress.js';
import { countingReports } from './export-progress.js';

export interface ExportOptions {
  period?: string | undefined;
  dryRun?: boolean;
  actor: string;
  /**
   * A part of a connected sync: bounded, written to sent/ rather than the outbox (nobody
   * carries it), and announced by no alert: the sync posts it at once.
   */
  part?: PartLimits;
  /** Told how many reports are written, of how many, while the export runs (the CLI's progress). */
  onProgress?: OnProgress;
}

export interface ExportPreview {
  period: string;
  reports: number;
  devices: number;
  virtualAccounts: number;
  proposals: number;
  usageSummary: number;
}

/**
 * What a dry run shows a reviewer before anything leaves: the usage summary's rows as the
 * bundle would carry them (per VA and tag), and how hostnames would leave.
 */
export interface ExportPreviewDetail extends ExportPreview {
  usage: { vaId: string; vaName: string; tag: string; inUse: number; devices: number }[];
  privacy: { hostnames: 'keyed-hash' | 'clear' };
}

export interface ExportResult extends ExportPreview {
  /** Parts only: a bound cut it, and more reports wait for the next part. */
  more?: boolean;
  /** Parts only: the ref of its last report (where the next part starts). */
  lastRef?: number;
  file: string;
  bundleId: string;
  sequence: number;
  hash: string;
  bytes: number;
}

/**
 * Writes the usage bundle: every report not yet acknowledged (so a lost bundle costs a
 * re-export, never data), the devices, the VA list as proposals, and a usage summary.
 * Reports are read in chunks between which ingest keeps running.
 */
export class ExportService {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private state: ExchangeState,
    private accounts: AccountService,
    private events: EventService,
    private alerts: AlertService,
    private opts: {
      bundleDir: string; dataDir: string; hashHostnames: boolean; timeZone?: string;
      /**
       * Signs a checkpoint of the audit trail's head as the bundle is made; what it returns
       * travels in the manifest's meta (null: the checkpoint stays on the site).
       */
      checkpoint?: (reason: 'export' | 'sync-part') => Checkpoint | null;
    },
  ) {}

  preview(period?: string): ExportPreviewDetail {
    const n = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    // The same rows, in the same order, as the bundle's usage summary (usage-payloads.ts).
    const usage = this.db
      .prepare('SELECT u.va_id AS vaId, coalesce(v.name, u.va_id) AS vaName, u.tag, u.in_use AS inUse, u.devices FROM va_usage u LEFT JOIN virtual_accounts v ON v.id = u.va_id ORDER BY u.va_id, u.tag')
      .all() as ExportPreviewDetail['usage'];
    return {
      period: period ?? currentPeriod(this.clock.now(), this.opts.timeZone),
      reports: n("SELECT count(*) AS n FROM report_pending WHERE destination = 'outpost'"),
      devices: n('SELECT count(*) AS n FROM devices'),
      virtualAccounts: n('SELECT count(*) AS n FROM virtual_accounts'),
      proposals: n("SELECT count(*) AS n FROM virtual_accounts WHERE origin = 'local'"),
      usageSummary: n('SELECT count(*) AS n FROM va_usage'),
      usage,
      privacy: { hostnames: this.opts.hashHostnames ? 'keyed-hash' : 'clear' },
    };
  }

  async export(o: ExportOptions): Promise<ExportResult> {
    if (o.part) return this.write(o);
    try {
      return await this.write(o);
    } catch (e) {
      this.recordFailure(o, e);
      throw e;
    }
  }

  /**
   * A failed export leaves no bundle row and no event of its own: without this one, the trail
   * and the metrics would show nothing of it. Its own transaction, since the export's never
   * ran or rolled back; a store that cannot take it either must not hide the export's error.
   * A part's failure is the sync's, recorded there.
   */
  private recordFailure(o: ExportOptions, e: unknown): void {
    const err = e as { code?: unknown; message?: unknown };
    const code = typeof err?.code === 'string' ? err.code : 'export_failed';
    const reason = typeof err?.message === 'string' ? err.message : String(e);
    try {
      this.db.transaction(() => this.events.append('exchange.export_failed', o.actor, null, null, { code, reason, ...(o.period ? { period: o.period } : {}) }))();
    } catch {
      // The store is what failed: the caller still gets the export's own error.
    }
  }

  private async write(o: ExportOptions): Promise<ExportResult> {
    const period = o.period ?? currentPeriod(this.clock.now(), this.opts.timeZone);
    // No preview here: its counts scan millions of rows on the main thread (a 0.1 s stall at
    // 3M reports); the manifest states what the bundle holds.
    const now = this.clock.now();
    const sequence = this.db.transaction(() => this.state.nextOutSequence())();
    const bundleId = newId('bun', now);
    const file = join(this.opts.bundleDir, o.part ? 'sent' : 'outbox', `usage-${period}-seq${String(sequence).padStart(6, '0')}${BUNDLE_EXTENSION}`);
    if (o.part) mkdirSync(dirname(file), { recursive: true });
    const work = mkdtempSync(join(this.opts.bundleDir, '.export-'));
    let written: WrittenBundle;
    const reach: PartReach = { lastRef: o.part?.after ?? 0, cut: false };
    try {
      const checkpoint = this.opts.checkpoint?.(o.part ? 'sync-part' : 'export') ?? null;
      const epoch = this.state.epochStatement;
      const header = {
        kind: 'usage' as const,
        bundleId,
        collectorId: this.identity.collectorId,
        accountId: this.state.upstreamAccountId ?? this.accounts.account().id,
        sequence,
        lastAnsweredHash: this.state.lastAnsweredHash,
        answers: null,
        period,
        createdAt: new Date(now).toISOString(),
        eventChainHead: this.events.chainHead(),
        meta: {
          hostnames: this.opts.hashHostnames ? 'keyed-hash' : 'clear',
          ...(o.part ? { transport: 'sync', devices: typeof o.part.devices === 'string' ? o.part.devices : 'arrived-since-sync-start' } : {}),
          // In meta, not a field of its own: an upstream that predates checkpoints reads the bundle as before.
          ...(checkpoint ? { eventCheckpoint: checkpoint } : {}),
          // After a restore: the upstream takes this bundle's sequence as the epoch's new start.
          ...(epoch ? { epoch } : {}),
        },
      };
      const onProgress = o.onProgress && throttled(o.onProgress);
      const listed = await this.payloads(work, o.part, reach, onProgress);
      onProgress?.flush();
      o.onProgress?.({ phase: 'sign', done: 0, total: null, unit: 'bundle' });
      written = await assembleBundle(file, header, listed, work, identitySigner(this.identity));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const held = (name: string) => written.manifest.payloads.find((p) => p.name === name)?.records ?? 0;
    const records = held(PAYLOAD.reports);
    this.db.transaction(() => {
      this.state.recordBundle({
        id: bundleId, direction: 'out', kind: 'usage', sequence, hash: written.hash, file, period, records,
        created_at: now, answers: null, forced: 0,
      });
      this.events.append(o.part ? 'exchange.sync_part_written' : 'exchange.exported', o.actor, bundleId, null, { sequence, period, reports: records, file, hash: written.hash });
      if (o.part) return;
      this.alerts.raise('export_ready', {
        subject: bundleId,
        severity: 'info',
        message: `usage bundle ${sequence} for ${period} is ready in the outbox: carry it to the upstream`,
        details: { file, sequence, reports: records },
      });
    })();
    const proposals = (this.db.prepare("SELECT count(*) AS n FROM virtual_accounts WHERE origin = 'local'").get() as { n: number }).n;
    return {
      ...(o.part ? { more: reach.cut, lastRef: reach.lastRef } : {}), period, reports: records, devices: held(PAYLOAD.devices), virtualAccounts: held(PAYLOAD.virtualAccounts), proposals,
      usageSummary: held(PAYLOAD.usageSummary), file, bundleId, sequence, hash: written.hash, bytes: written.bytes,
    };
  }

  /**
   * The payloads, written by a worker thread on its own snapshot of the store where one can
   * run (the built collector), else inline (tests run the TypeScript sources directly).
   */
  private async payloads(dir: string, part: PartLimits | undefined, reach: PartReach, onProgress?: OnProgress): Promise<ListedPayload[]> {
    const key = this.hostnameKey();
    const worker = builtWorker(import.meta.url, './export-worker.js');
    if (!worker) return writePayloads(dir, countingReports(this.db, usagePayloads(this.db, hostnameMapper(key), part, reach), onProgress, part?.after, part?.maxReports));
    return new Promise((resolve, reject) => {
      const w = new Worker(worker, {
        workerData: { dbFile: this.db.name, dir, hostnameKey: key?.toString('base64') ?? null, part: part ?? null, progress: Boolean(onProgress) },
        // Its lines pass through as Buffers and its heap stays small; a small young generation
        // is scavenged often, which frees those Buffers early and keeps the server's RSS flat.
        resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4 },
      });
      w.on('message', (m: { ok: boolean; listed?: ListedPayload[]; reach?: PartReach; error?: string; progress?: ProgressEvent }) => {
        if (m.progress) return onProgress?.(m.progress);
        if (!m.ok) return reject(new Error(m.error));
        Object.assign(reach, m.reach);
        resolve(m.listed!);
      });
      w.once('error', reject);
      w.once('exit', (code) => code !== 0 && reject(new Error(`the export worker stopped with code ${code}`)));
    });
  }

  /** The key for hashing hostnames, created on first use; it never leaves the site. */
  private hostnameKey(): Buffer | null {
    if (!this.opts.hashHostnames) return null;
    const keyFile = join(this.opts.dataDir, 'keys', 'hostname-hash.key');
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    return Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
  }
}

/** The month an export without a period covers: the current one, on the configured zone's calendar. */
export const currentPeriod = (ms: number, zone = 'UTC'): string => periodOf(ms, zone);
