import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Identity } from '../identity/identity.js';
import type { EventService } from '../events/service.js';
import type { AlertService } from '../alerts/service.js';
import type { AccountService } from '../accounts/service.js';
import { writeBundle, type WrittenBundle } from './write.js';
import type { ExchangeState } from './state.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import { PAYLOAD, type DeviceRecord, type UsageSummaryRecord, type VaRecord } from './records.js';

export interface ExportOptions {
  period?: string | undefined;
  dryRun?: boolean;
  actor: string;
}

export interface ExportPreview {
  period: string;
  reports: number;
  devices: number;
  virtualAccounts: number;
  proposals: number;
  usageSummary: number;
}

export interface ExportResult extends ExportPreview {
  file: string;
  bundleId: string;
  sequence: number;
  hash: string;
  bytes: number;
}

const CHUNK = 5000;
/** reports.tags holds the tags newline-separated (tags contain commas); this makes them a JSON array. */
const TAGS_AS_JSON = `CASE WHEN r.tags = '' THEN '[]' ELSE '["' || replace(replace(replace(r.tags, '\\', '\\\\'), '"', '\\"'), char(10), '","') || '"]' END`;

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
    private opts: { bundleDir: string; dataDir: string; hashHostnames: boolean },
  ) {}

  preview(period?: string): ExportPreview {
    const n = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      period: period ?? currentPeriod(this.clock.now()),
      reports: n('SELECT count(*) AS n FROM report_pending'),
      devices: n('SELECT count(*) AS n FROM devices'),
      virtualAccounts: n('SELECT count(*) AS n FROM virtual_accounts'),
      proposals: n("SELECT count(*) AS n FROM virtual_accounts WHERE origin = 'local'"),
      usageSummary: n('SELECT count(*) AS n FROM va_usage'),
    };
  }

  async export(o: ExportOptions): Promise<ExportResult> {
    const period = o.period ?? currentPeriod(this.clock.now());
    const preview = this.preview(period);
    const now = this.clock.now();
    const sequence = this.db.transaction(() => this.state.nextOutSequence())();
    const bundleId = newId('bun', now);
    const file = join(this.opts.bundleDir, 'outbox', `usage-${period}-seq${String(sequence).padStart(6, '0')}${BUNDLE_EXTENSION}`);
    const hostname = this.hostnameMapper();
    const written: WrittenBundle = await writeBundle(
      file,
      {
        kind: 'usage',
        bundleId,
        collectorId: this.identity.collectorId,
        accountId: this.state.upstreamAccountId ?? this.accounts.account().id,
        sequence,
        lastAnsweredHash: this.state.lastAnsweredHash,
        answers: null,
        period,
        createdAt: new Date(now).toISOString(),
        eventChainHead: this.events.head().id ? this.events.head() : null,
        meta: { hostnames: this.opts.hashHostnames ? 'keyed-hash' : 'clear' },
      },
      [
        { name: PAYLOAD.reports, records: this.pendingReports() },
        { name: PAYLOAD.devices, records: this.devices(hostname) },
        { name: PAYLOAD.virtualAccounts, records: this.virtualAccounts() },
        { name: PAYLOAD.usageSummary, records: this.usageSummary() },
      ],
      { keyId: this.identity.fingerprint, sign: (b) => this.identity.signDetached(b) },
    );
    const records = written.manifest.payloads.find((p) => p.name === PAYLOAD.reports)!.records;
    this.db.transaction(() => {
      this.state.recordBundle({
        id: bundleId, direction: 'out', kind: 'usage', sequence, hash: written.hash, file, period, records,
        created_at: now, answers: null, forced: 0,
      });
      this.events.append('exchange.exported', o.actor, bundleId, null, { sequence, period, reports: records, file, hash: written.hash });
      this.alerts.raise('export_ready', {
        subject: bundleId,
        severity: 'info',
        message: `usage bundle ${sequence} for ${period} is ready in the outbox: carry it to the upstream`,
        details: { file, sequence, reports: records },
      });
    })();
    return { ...preview, reports: records, file, bundleId, sequence, hash: written.hash, bytes: written.bytes };
  }

  /**
   * The unacknowledged reports, as NDJSON lines built by SQLite itself (json_object escapes
   * the bodies in C): about three times faster than building objects and stringifying them
   * in JavaScript, which at millions of reports is the difference that matters.
   */
  private async *pendingReports(): AsyncGenerator<string> {
    const stmt = this.db
      .prepare(
        `SELECT p.report_id, json_object('ref', r.id, 'udi', d.udi_pid || ':' || d.udi_serial, 'source', r.source, 'reportId', r.report_id,
                'seq', r.seq, 'generatedAt', r.generated_at / 1000, 'tags', json(${TAGS_AS_JSON}), 'measurements', r.measurement_count,
                'body', r.body)
         FROM report_pending p JOIN reports r ON r.id = p.report_id LEFT JOIN devices d ON d.id = r.device_id
         WHERE p.report_id > ? ORDER BY p.report_id LIMIT ${CHUNK}`,
      )
      .raw(); // every pending report goes, so that an ACK for a run of refs covers exactly what was sent
    let after = 0;
    for (;;) {
      const rows = stmt.all(after) as [number, string][];
      if (!rows.length) return;
      let text = '';
      for (const r of rows) text += r[1] + '\n';
      yield text;
      after = rows[rows.length - 1]![0];
      await new Promise((res) => setImmediate(res)); // let device requests in between chunks
    }
  }

  private async *devices(hostname: (h: string) => string): AsyncGenerator<DeviceRecord> {
    const stmt = this.db.prepare(
      `SELECT d.*, (SELECT json_group_array(udi) FROM device_udis u WHERE u.device_id = d.id) AS udis
       FROM devices d WHERE d.id > ? ORDER BY d.id LIMIT ${CHUNK}`,
    );
    let after = '';
    for (;;) {
      const rows = stmt.all(after) as {
        id: string; va_id: string; udi_pid: string; udi_serial: string; hostname: string; software_version: string; status: string;
        registered_at: number; last_seen_at: number | null; udis: string;
      }[];
      if (!rows.length) return;
      for (const d of rows) {
        yield {
          deviceId: d.id, udi: `${d.udi_pid}:${d.udi_serial}`, udis: JSON.parse(d.udis) as string[],
          vaId: d.va_id, hostname: d.hostname ? hostname(d.hostname) : '', softwareVersion: d.software_version, status: d.status,
          registeredAt: toIso(d.registered_at)!, lastSeenAt: toIso(d.last_seen_at),
        };
      }
      after = rows[rows.length - 1]!.id;
      await new Promise((res) => setImmediate(res));
    }
  }

  private *virtualAccounts(): Generator<VaRecord> {
    for (const va of this.accounts.list()) yield { vaId: va.id, name: va.name, origin: va.origin };
  }

  private *usageSummary(): Generator<UsageSummaryRecord> {
    const rows = this.db.prepare('SELECT va_id, tag, in_use, devices FROM va_usage ORDER BY va_id, tag').all() as {
      va_id: string; tag: string; in_use: number; devices: number;
    }[];
    for (const r of rows) yield { vaId: r.va_id, tag: r.tag, inUse: r.in_use, devices: r.devices };
  }

  /** Hostnames as they are, or as a keyed hash whose key never leaves the site. */
  private hostnameMapper(): (h: string) => string {
    if (!this.opts.hashHostnames) return (h) => h;
    const keyFile = join(this.opts.dataDir, 'keys', 'hostname-hash.key');
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
    return (h) => 'hmac-sha256:' + createHmac('sha256', key).update(h).digest('hex').slice(0, 32);
  }
}

export function currentPeriod(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}
