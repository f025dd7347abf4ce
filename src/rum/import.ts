import { sha256hex } from '../shared/hash.js';
import { newId } from '../shared/ids.js';
import { badRequest, AppError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AccountService } from '../accounts/service.js';
import type { EventService } from '../events/service.js';
import type { LicenseService } from '../licenses/service.js';
import type { UsageKey } from '../licenses/ledger.js';
import type { DeviceRepository, DeviceRow } from '../devices/repository.js';
import { scanRum, type ScanProblem } from './scan.js';
import { parseRumReport, type RumReport } from './report.js';

export type ElementOutcome = 'accepted' | 'replaced' | 'duplicate' | 'superseded';

export interface RumImportResult {
  elements: number;
  accepted: number;
  replaced: number;
  duplicate: number;
  superseded: number;
  devicesCreated: number;
  invalid: ScanProblem[];
  written: boolean;
}

/**
 * Imports RUM files. By default a file is all or nothing: one malformed element and nothing is
 * written; with skipInvalid the valid elements are imported and the others listed.
 */
export class RumImporter {
  private findReport;
  private insertReport;
  private replaceReport;
  private pending;
  private unack;

  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private devices: DeviceRepository,
    private licenses: LicenseService,
    private events: EventService,
  ) {
    this.findReport = db.prepare(
      "SELECT id, content_hash, measurement_count FROM reports WHERE device_id = ? AND source = 'rum' AND report_id = ?",
    );
    this.insertReport = db.prepare(
      `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
       VALUES (?, 'rum', ?, NULL, ?, ?, ?, ?, ?, ?)`,
    );
    // A grown report replaces its earlier copy, and goes upstream again (it is pending once more).
    this.replaceReport = db.prepare(
      'UPDATE reports SET body = ?, content_hash = ?, measurement_count = ?, generated_at = ?, received_at = ? WHERE id = ?',
    );
    this.pending = db.prepare('INSERT OR REPLACE INTO report_pending (report_id, since) VALUES (?, ?)');
    this.unack = db.prepare('DELETE FROM report_acks WHERE report_id = ?');
  }

  import(data: Buffer | string, opts: { vaId: string; skipInvalid: boolean; actor: string; fileName?: string | undefined }): RumImportResult {
    const text = decodeUtf8(data);
    const va = this.accounts.require(opts.vaId);
    const { elements, problems } = scanRum(text);
    const invalid: ScanProblem[] = [...problems];
    const parsed: { el: (typeof elements)[number]; report: RumReport }[] = [];
    for (const el of elements) {
      const r = parseRumReport(el.content);
      if ('reason' in r) invalid.push({ index: el.index, line: el.line, column: el.column, reason: r.reason });
      else parsed.push({ el, report: r });
    }
    const fatal = problems.some((p) => p.index === null); // the file's structure itself is broken
    if (elements.length === 0 && !invalid.length) invalid.push({ index: null, line: 1, column: 1, reason: 'no <RUMReport> element found' });
    if (fatal || (invalid.length && !opts.skipInvalid) || parsed.length === 0) {
      throw badRequest('invalid_rum_file', describe(invalid), { invalid, elements: elements.length });
    }
    const result: RumImportResult = {
      elements: elements.length, accepted: 0, replaced: 0, duplicate: 0, superseded: 0, devicesCreated: 0, invalid, written: true,
    };
    this.db.transaction(() => {
      const touched: UsageKey[] = [];
      for (const { el, report } of parsed) {
        const outcome = this.importOne(report, el.raw, va.id, result, touched, el.index);
        if (typeof outcome !== 'string') {
          if (!opts.skipInvalid) throw badRequest('invalid_rum_file', describe([{ ...where(el), reason: outcome.reason }]), { invalid: [{ ...where(el), reason: outcome.reason }] });
          invalid.push({ ...where(el), reason: outcome.reason });
          continue;
        }
        result[outcome]++;
      }
      this.licenses.refreshAlerts(touched);
      this.events.append('usage.imported', opts.actor, opts.fileName ?? null, va.id, {
        format: 'rum', elements: result.elements, accepted: result.accepted, replaced: result.replaced,
        duplicate: result.duplicate, superseded: result.superseded, invalid: invalid.length, devicesCreated: result.devicesCreated,
      });
    })();
    return result;
  }

  private importOne(r: RumReport, raw: string, vaId: string, result: RumImportResult, touched: UsageKey[], _index: number): ElementOutcome | { reason: string } {
    const now = this.clock.now();
    const units = [r.udi, ...r.haUdis];
    let device: DeviceRow | undefined;
    for (const u of units) if ((device = this.devices.byUdi(u.pid, u.serial))) break;
    if (!device) {
      device = {
        id: newId('dev', now), va_id: vaId, udi_pid: r.udi.pid, udi_serial: r.udi.serial, hostname: '',
        software_version: r.softwareVersion, public_key: null, pending_public_key: null, pending_since: null,
        status: 'active', source: 'rum', registered_at: now, last_seen_at: null, last_seq: null,
      };
      this.devices.insert(device);
      this.events.append('device.registered', 'rum-import', device.id, vaId, { udi: `${r.udi.pid}:${r.udi.serial}`, source: 'rum' });
      result.devicesCreated++;
    } else if (device.status === 'deregistered') {
      return { reason: `device ${device.udi_pid}:${device.udi_serial} is deregistered` };
    }
    // The units of an HA pair are one device, whichever unit reports.
    for (const u of units) this.devices.addUdi(device.id, u.pid, u.serial);

    const key = `${r.udi.pid}:${r.udi.serial}:${r.reportId}`;
    const hash = sha256hex(raw);
    const generatedAt = Math.max(...r.measurements.map((m) => m.end)) * 1000;
    const prev = this.findReport.get(device.id, key) as { id: number; content_hash: string; measurement_count: number } | undefined;
    let outcome: ElementOutcome;
    let pk: number;
    if (!prev) {
      pk = Number(this.insertReport.run(device.id, key, generatedAt, now, hash, raw, r.measurements.length, JSON.stringify([r.tag])).lastInsertRowid);
      this.pending.run(pk, now);
      outcome = 'accepted';
    } else if (prev.content_hash === hash) {
      return 'duplicate';
    } else if (r.measurements.length > prev.measurement_count) {
      this.replaceReport.run(raw, hash, r.measurements.length, generatedAt, now, prev.id);
      this.pending.run(prev.id, now);
      this.unack.run(prev.id);
      pk = prev.id;
      outcome = 'replaced';
    } else {
      return 'superseded'; // an earlier, shorter copy of a report already held in full
    }

    // A stale device counts again: its usage goes back first, then the new measurement applies.
    if (device.status === 'stale') touched.push(...this.licenses.ledger.restore(device.id, device.va_id));
    const live = { ...device, status: 'active' as const };
    const latest = r.measurements.reduce((a, m) => (m.end >= a.end ? m : a));
    if (this.licenses.ledger.apply(live, r.tag, latest.count, latest.end * 1000, pk)) touched.push({ vaId: device.va_id, tag: r.tag });
    this.devices.update(device.id, {
      status: 'active',
      last_seen_at: Math.max(device.last_seen_at ?? 0, generatedAt),
      ...(r.softwareVersion ? { software_version: r.softwareVersion } : {}),
    });
    return outcome;
  }
}

function where(el: { index: number; line: number; column: number }) {
  return { index: el.index, line: el.line, column: el.column };
}

function describe(invalid: ScanProblem[]): string {
  const first = invalid[0];
  if (!first) return 'the file holds no valid RUM report';
  const at = `${first.index !== null ? `element ${first.index} ` : ''}at line ${first.line}, column ${first.column}`;
  const more = invalid.length > 1 ? ` (and ${invalid.length - 1} more problem${invalid.length > 2 ? 's' : ''})` : '';
  return `${at}: ${first.reason}${more}; nothing was imported`;
}

function decodeUtf8(data: Buffer | string): string {
  if (typeof data === 'string') return data;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new AppError(400, 'invalid_rum_file', 'the file is not valid UTF-8; nothing was imported');
  }
}
