import { sha256hex } from '../shared/hash.js';
import { badRequest, conflict, unauthorized } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import type { Destinations } from './destinations.js';
import type { Db } from '../store/open.js';
import type { DeviceAuth, DeviceRepository } from '../devices/repository.js';
import type { LicenseService } from '../licenses/service.js';
import type { UsageKey } from '../licenses/ledger.js';
import { GroupCommit } from './group-commit.js';
import { WalSync, type FileSync } from '../store/wal-sync.js';
import type { DeviceReport } from './report-schema.js';
import { Tombstones } from '../retention/tombstones.js';

const TOUCH_EVERY_MS = 60_000;

export type ReportStatus = 'accepted' | 'duplicate';

export interface ReportResult {
  reportId: string;
  status: ReportStatus;
}

/** A request's answer: each report's outcome, and what the collector held before it. */
export interface IngestResult {
  results: ReportResult[];
  /**
   * The highest report sequence this collector held for the device before this request (null:
   * none). A collector restored from a backup holds less than the device sent: the device sends
   * again what it still keeps above this number (see the README's device protocol).
   */
  heldSeq: number | null;
}

interface Prepared {
  report: DeviceReport;
  body: string;
  hash: string;
  /** Per tag, the measurement with the latest period end in this report. */
  latest: Map<string, { count: number; end: number }>;
  /** The tags measured, as a JSON array (what a usage bundle carries). */
  tagsJson: string;
}

/**
 * Usage reports from devices: checked in the request, written by group commit. The promise
 * resolves only after the commit that holds the reports, so a 2xx means durable.
 */
export class IngestService {
  readonly commits: GroupCommit;
  private readonly wal: WalSync;
  private insertReport;
  private existingHash;
  private markPending;
  private tombstones;
  private touched: UsageKey[] = [];
  /** When each device's last-seen time was last written: see write(). */
  private lastTouch = new Map<string, number>();
  /**
   * The highest report sequence held per device, read from the store on a device's first report
   * after a start and kept here after (devices.last_seq is written at most once a minute, so it
   * lags). Entries of a commit that fails are dropped, so it never claims more than the store holds.
   */
  private highest = new Map<string, number | null>();
  private maxSeq;
  /** Told of each request's outcome: its reports' results, or why it was refused (the metrics). */
  observer: ((results: ReportResult[] | null, refusal: unknown) => void) | null = null;

  constructor(
    db: Db,
    private clock: Clock,
    private devices: DeviceRepository,
    private licenses: LicenseService,
    destinations: Destinations,
    private maxFutureSkewMs: number,
    syncFile?: FileSync,
  ) {
    this.insertReport = db.prepare(
      `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
       VALUES (?, 'device', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.markPending = destinations.marker('device');
    this.existingHash = db.prepare("SELECT content_hash FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?");
    this.maxSeq = db.prepare("SELECT max(seq) FROM reports WHERE device_id = ? AND source = 'device'").pluck();
    this.tombstones = new Tombstones(db);
    // Shortage alerts follow the (VA, tag) pairs the batch touched, once per commit.
    // Group commits leave the WAL's fsync to the thread pool; replies still wait for it.
    this.wal = new WalSync(`${db.name}-wal`, syncFile);
    this.commits = new GroupCommit(db, () => this.refreshAlerts(), () => this.wal.sync());
  }

  /** Commits what is queued and waits until it is on disk: before the store closes. */
  async drain(): Promise<void> {
    this.commits.flush();
    await this.wal.close();
  }

  submit(device: DeviceAuth, reports: DeviceReport[]): Promise<IngestResult> {
    let done: Promise<IngestResult>;
    try {
      done = this.checkAndSubmit(device, reports);
    } catch (e) {
      this.observer?.(null, e);
      throw e;
    }
    done.then((r) => this.observer?.(r.results, null), (e: unknown) => {
      this.highest.delete(device.id);
      this.observer?.(null, e);
    });
    return done;
  }

  private checkAndSubmit(device: DeviceAuth, reports: DeviceReport[]): Promise<IngestResult> {
    const now = this.clock.now();
    const prepared = reports.map((r, i) => {
      if (r.generatedAt * 1000 > now + this.maxFutureSkewMs) {
        throw badRequest('generated_in_future', `reports[${i}]: generatedAt is ahead of the collector's clock by more than the allowed skew`, {
          reportId: r.reportId,
          generatedAt: r.generatedAt,
          collectorTime: Math.floor(now / 1000),
        });
      }
      // A period ending far ahead would pin the device's count until then: later reports,
      // ending earlier, could never replace it.
      const end = r.measurements.reduce((e, m) => (m.end > e ? m.end : e), 0);
      if (end * 1000 > now + this.maxFutureSkewMs) {
        throw badRequest('period_in_future', `reports[${i}]: a measurement ends ahead of the collector's clock by more than the allowed skew (device.maxFutureSkewSeconds)`, {
          reportId: r.reportId,
          end,
          collectorTime: Math.floor(now / 1000),
        });
      }
      return prepare(r);
    });
    // Every job runs in its own savepoint: a report refused after an earlier write (a reused id
    // in a batch) rolls back alone, and a refused request leaves nothing behind.
    return this.commits.submit(() => this.write(device, prepared, now));
  }

  private write(checked: DeviceAuth, prepared: Prepared[], now: number): IngestResult {
    const deviceId = checked.id;
    // What decides the write (status, VA, key) is read here, inside the transaction that
    // writes: a deregister, a move or a re-key may have landed while the signature was checked.
    const device = this.devices.forAuth(deviceId);
    if (!device || device.status === 'deregistered') {
      throw unauthorized('unknown_device', `device ${deviceId} is not registered`);
    }
    if (device.public_key !== checked.public_key) {
      throw unauthorized('key_changed', `the key of device ${deviceId} changed while the request was checked; sign again with the current key`);
    }
    const results: ReportResult[] = [];
    let heldSeq = this.highest.get(deviceId);
    if (heldSeq === undefined) heldSeq = (this.maxSeq.get(deviceId) as number | null) ?? null;
    // Per tag, the latest measurement over the request's new reports: applying it once gives
    // what applying each report in turn would (the latest period end wins either way).
    const latest = new Map<string, { count: number; end: number; pk: number }>();
    let maxSeq = 0;
    for (const p of prepared) {
      const r = p.report;
      maxSeq = Math.max(maxSeq, r.seq);
      // A pruned report left a tombstone, which the insert cannot see: it answers as the row did.
      const pruned = this.tombstones.find(deviceId, 'device', r.reportId);
      const ins = pruned ? { changes: 0, lastInsertRowid: 0 } : this.insertReport.run(deviceId, r.reportId, r.seq, r.generatedAt * 1000, now, p.hash, p.body, r.measurements.length, p.tagsJson);
      if (ins.changes === 0) {
        const prev = pruned ?? (this.existingHash.get(deviceId, r.reportId) as { content_hash: string });
        if (prev.content_hash !== p.hash) {
          throw conflict(
            'report_id_reused',
            `report ${r.reportId} was already received with different content: send it again with the same content (answered duplicate), or give the new content a new report id`,
            { reportId: r.reportId },
          );
        }
        results.push({ reportId: r.reportId, status: 'duplicate' });
        continue;
      }
      const pk = Number(ins.lastInsertRowid);
      this.markPending(pk, now);
      for (const [tag, m] of p.latest) {
        const cur = latest.get(tag);
        if (!cur || m.end >= cur.end) latest.set(tag, { ...m, pk });
      }
      results.push({ reportId: r.reportId, status: 'accepted' });
    }
    // A stale device that speaks again counts again: its usage goes back into its VA before
    // the new measurements apply. The status change is conditional in SQL, so it happens once.
    const revived = device.status === 'stale' && this.devices.reactivateStale(deviceId) !== null;
    if (revived) this.touched.push(...this.licenses.ledger.restore(deviceId, device.va_id));
    const live: DeviceAuth = revived ? { ...device, status: 'active' } : device;
    for (const [tag, m] of latest) {
      if (this.licenses.ledger.apply(live, tag, m.count, m.end * 1000, m.pk)) this.touched.push({ vaId: device.va_id, tag });
    }
    // Last seen matters to the day (silent and stale devices), not to the millisecond: write it
    // at most once a minute per device, which keeps a row update off most reports.
    const last = this.lastTouch.get(deviceId);
    if (revived || last === undefined || now - last >= TOUCH_EVERY_MS || now < last) {
      this.devices.touch(deviceId, now, maxSeq);
      this.lastTouch.set(deviceId, now);
    }
    this.highest.set(deviceId, heldSeq === null ? maxSeq : Math.max(heldSeq, maxSeq));
    return { results, heldSeq };
  }

  private refreshAlerts(): void {
    if (!this.touched.length) return;
    const keys = this.touched;
    this.touched = [];
    this.licenses.refreshAlerts(keys);
  }
}

function prepare(report: DeviceReport): Prepared {
  // parseReport built this object with its keys in a fixed order: its JSON is canonical.
  const body = JSON.stringify(report);
  const latest = new Map<string, { count: number; end: number }>();
  for (const m of report.measurements) {
    const cur = latest.get(m.tag);
    if (!cur || m.end >= cur.end) latest.set(m.tag, { count: m.count, end: m.end });
  }
  return { report, body, hash: sha256hex(body), latest, tagsJson: JSON.stringify([...latest.keys()]) };
}
