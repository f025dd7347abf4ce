import { sha256hex } from '../shared/hash.js';
import { newId } from '../shared/ids.js';
import { badRequest, AppError } from '../shared/errors.js';
import { DAY_MS, toIso, type Clock } from '../shared/clock.js';
import type { Destinations } from '../usage/destinations.js';
import type { Db } from '../store/open.js';
import type { AccountService } from '../accounts/service.js';
import type { EventService } from '../events/service.js';
import type { LicenseService } from '../licenses/service.js';
import type { UsageKey } from '../licenses/ledger.js';
import type { DeviceRepository, DeviceRow } from '../devices/repository.js';
import { scanRumSteps, type ScanProblem, type ScannedElement } from './scan.js';
import { decodeUtf8 } from './utf8.js';
import { Slicer } from './slicer.js';
import { Pacer } from '../shared/pacer.js';
import { parseRumReport, type RumReport } from './report.js';
import { Tombstones } from '../retention/tombstones.js';

export type ElementOutcome = 'accepted' | 'replaced' | 'duplicate' | 'superseded';

export interface RumImportResult {
  elements: number;
  accepted: number;
  replaced: number;
  duplicate: number;
  superseded: number;
  devicesCreated: number;
  /**
   * Devices of this file whose latest report ended more than device.staleAfterDays ago: they
   * are stale at once (their usage is not in the VA), as the next evaluation would make them.
   */
  stale: number;
  staleAfterDays: number;
  /** The first LIST_LIMIT of them; `stale` is the exact count. */
  staleDevices: ListedDevice[];
  /** Devices of this file already in another VA than the one named: they stay where they are. */
  otherVa: number;
  otherVaDevices: ListedDevice[];
  invalid: ScanProblem[];
  written: boolean;
}

export interface ListedDevice {
  deviceId: string;
  udi: string;
  vaId: string;
  vaName: string;
  /** The end of its latest report. */
  lastReportAt: string | null;
}

/** Devices an import result lists by name; the counts beside the lists are exact. */
export const LIST_LIMIT = 100;

/**
 * How long one write transaction may run before it commits and lets the event loop turn: a
 * real device's file (a handful of reports) is written in one, so it is all or nothing even
 * if the collector stops; a 50,000-report file takes a few hundred.
 */
export const WRITE_SLICE_MS = 20;

export interface RumImportOptions {
  vaId: string;
  skipInvalid: boolean;
  actor: string;
  fileName?: string | undefined;
  /** rum.maxElements: a file with more RUMReport elements is refused before anything is written. */
  maxElements: number;
  /** rum.maxFutureSkewSeconds, in ms: a measurement ending further ahead is refused. */
  maxFutureSkewMs: number;
  /** device.staleAfterDays: a device whose latest report ended longer ago is stale at once. */
  staleAfterDays: number;
  /**
   * Import reports of devices that sign their own (they have a key) as well. Off by default:
   * an unsigned file must not override what a device reported with its key.
   */
  overrideSigned?: boolean | undefined;
}

/**
 * Imports RUM files, on the main thread but in slices: decoding, scanning and parsing yield to
 * the event loop every few milliseconds, and the write runs in transactions of WRITE_SLICE_MS
 * with a turn of the loop between them, so devices are answered while a 64 MB file
 * imports. By default a file is all or nothing: every element is checked before the first
 * write, and one malformed element means nothing is written; with skipInvalid the valid
 * elements are imported and the others listed.
 */
export class RumImporter {
  private findReport;
  private insertReport;
  private replaceReport;
  private pending;
  private markStale;
  private tombstones;
  private reviveReport;

  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private devices: DeviceRepository,
    private licenses: LicenseService,
    private events: EventService,
    destinations: Destinations,
  ) {
    this.findReport = db.prepare(
      "SELECT id, content_hash, measurement_count FROM reports WHERE device_id = ? AND source = 'rum' AND report_id = ?",
    );
    this.insertReport = db.prepare(
      `INSERT INTO reports (device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
       VALUES (?, 'rum', ?, NULL, ?, ?, ?, ?, ?, ?)`,
    );
    // A grown report replaces its earlier copy, and waits again for every destination.
    this.replaceReport = db.prepare(
      'UPDATE reports SET body = ?, content_hash = ?, measurement_count = ?, generated_at = ?, received_at = ? WHERE id = ?',
    );
    // A grown copy of a pruned report comes back under its old row id: to the destinations it is that report grown.
    this.reviveReport = db.prepare(
      `INSERT INTO reports (id, device_id, source, report_id, seq, generated_at, received_at, content_hash, body, measurement_count, tags_json)
       VALUES (?, ?, 'rum', ?, NULL, ?, ?, ?, ?, ?, ?)`,
    );
    this.tombstones = new Tombstones(db);
    this.pending = destinations.marker('rum');
    // Conditional, as in the scheduled evaluation: a device is released once, whoever marks it first.
    this.markStale = db.prepare("UPDATE devices SET status = 'stale' WHERE id = ? AND status = 'active'");
  }

  /** The file's bytes exactly as they came: decoded here, strictly, and never re-encoded. */
  async import(data: Uint8Array, opts: RumImportOptions, slicer = new Slicer()): Promise<RumImportResult> {
    this.accounts.require(opts.vaId);
    const text = await decodeUtf8(data, slicer);
    return this.ingest(scanRumSteps(text), opts, slicer);
  }

  /**
   * Reports polled from a device's REST API: each is the JSON of one element of its answer,
   * kept byte for byte as the original, with the same rules as a file's RUMReport elements.
   */
  importPolled(reports: string[], opts: RumImportOptions, slicer = new Slicer()): Promise<RumImportResult> {
    this.accounts.require(opts.vaId);
    const steps = reports.map((raw, i) => ({ element: { index: i + 1, line: i + 1, column: 1, raw, content: raw } }));
    return this.ingest(steps, opts, slicer);
  }

  private async ingest(steps: Iterable<{ element: ScannedElement } | { problem: ScanProblem }>, opts: RumImportOptions, slicer: Slicer): Promise<RumImportResult> {
    const va = this.accounts.require(opts.vaId);
    const invalid: ScanProblem[] = [];
    const parsed: { el: ScannedElement; report: RumReport }[] = [];
    let elements = 0;
    let fatal = false; // the file's structure itself is broken
    for (const step of steps) {
      if ('problem' in step) {
        invalid.push(step.problem);
        fatal ||= step.problem.index === null;
      } else {
        const el = step.element;
        elements++;
        const r = parseRumReport(el.content);
        const reason = 'reason' in r ? r.reason : this.refusal(r, opts);
        if (reason) invalid.push({ ...where(el), reason });
        else parsed.push({ el, report: r as RumReport });
      }
      const index = 'problem' in step ? step.problem.index : step.element.index;
      if (index !== null && index > opts.maxElements) {
        throw new AppError(413, 'too_many_elements', `the file holds more than ${opts.maxElements} <RUMReport> elements, the limit set by rum.maxElements; split it, or raise the limit; nothing was imported`, { maxElements: opts.maxElements });
      }
      await slicer.check();
    }
    if (elements === 0 && !invalid.length) invalid.push({ index: null, line: 1, column: 1, reason: 'no <RUMReport> element found' });
    if (fatal || (invalid.length && !opts.skipInvalid) || parsed.length === 0) {
      throw badRequest('invalid_rum_file', describe(invalid), { invalid, elements });
    }
    const result: RumImportResult = {
      elements, accepted: 0, replaced: 0, duplicate: 0, superseded: 0, devicesCreated: 0,
      stale: 0, staleAfterDays: opts.staleAfterDays, staleDevices: [], otherVa: 0, otherVaDevices: [], invalid, written: true,
    };
    let next = 0;
    const overridden = new Set<string>();
    const track: ImportTrack = { stale: new Map(), otherVa: new Map() };
    // Paced as the other long jobs are: each write slice is followed by a pause as long as it
    // (see Pacer), or device replies wait on fdatasyncs queued behind the import's writes.
    const pacer = new Pacer(WRITE_SLICE_MS);
    while (next < parsed.length) {
      const sliceStart = performance.now();
      this.db.transaction(() => {
        const touched: UsageKey[] = [];
        do {
          const { el, report } = parsed[next++]!;
          const outcome = this.importOne(report, el.raw, va.id, touched, opts, overridden, track);
          // Checked before the first write; only a deregistration landing since then gets here,
          // and it is as if the deregistration came after the import: the element is listed.
          if (typeof outcome !== 'string') invalid.push({ ...where(el), reason: outcome.reason });
          else result[outcome]++;
        } while (next < parsed.length && performance.now() - sliceStart < WRITE_SLICE_MS);
        this.licenses.refreshAlerts(touched);
        if (next === parsed.length) {
          summarize(result, track, (id) => this.accounts.require(id).name);
          if (overridden.size) {
            this.events.append('usage.rum_overrode_signed', opts.actor, opts.fileName ?? null, va.id, { devices: [...overridden].sort() });
          }
          this.events.append('usage.imported', opts.actor, opts.fileName ?? null, va.id, {
            format: 'rum', elements: result.elements, accepted: result.accepted, replaced: result.replaced,
            duplicate: result.duplicate, superseded: result.superseded, invalid: invalid.length, devicesCreated: result.devicesCreated,
            stale: result.stale, otherVa: result.otherVa,
          });
        }
      })();
      if (next < parsed.length) {
        await slicer.yield();
        await pacer.pause();
      }
    }
    return result;
  }

  /** Why a well-formed report cannot be imported as things stand, checked before anything is written. */
  private refusal(r: RumReport, opts: RumImportOptions): string | undefined {
    const end = lastEnd(r);
    if (end * 1000 > this.clock.now() + opts.maxFutureSkewMs) {
      return `a measurement ends at ${new Date(end * 1000).toISOString()}, further ahead of the collector's clock than rum.maxFutureSkewSeconds allows`;
    }
    for (const u of [r.udi, ...r.haUdis]) {
      const device = this.devices.byUdi(u.pid, u.serial);
      if (!device) continue;
      if (device.status === 'deregistered') return deregistered(device);
      if (device.public_key !== null && !opts.overrideSigned) return signedByDevice(device);
      return undefined;
    }
    return undefined;
  }

  private importOne(
    r: RumReport, raw: string, vaId: string, touched: UsageKey[], opts: RumImportOptions, overridden: Set<string>, track: ImportTrack,
  ): ElementOutcome | { reason: string } {
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
      track.created = (track.created ?? 0) + 1;
    } else if (device.status === 'deregistered') {
      return { reason: deregistered(device) };
    } else if (device.public_key !== null) {
      // Checked before the first write; a device that took a key since then is listed too.
      if (!opts.overrideSigned) return { reason: signedByDevice(device) };
      overridden.add(device.id);
    }
    if (device.va_id !== vaId) track.otherVa.set(device.id, device);
    // The units of an HA pair are one device, whichever unit reports.
    for (const u of units) this.devices.addUdi(device.id, u.pid, u.serial);

    const key = `${r.udi.pid}:${r.udi.serial}:${r.reportId}`;
    const hash = sha256hex(raw);
    const generatedAt = lastEnd(r) * 1000;
    const held = this.findReport.get(device.id, key) as { id: number; content_hash: string; measurement_count: number } | undefined;
    // A pruned report is decided by its tombstone exactly as its row would decide it.
    const pruned = held ? undefined : this.tombstones.find(device.id, 'rum', key);
    const prev = held ?? (pruned && { id: pruned.report_pk, content_hash: pruned.content_hash, measurement_count: pruned.measurement_count });
    let outcome: ElementOutcome;
    let pk: number;
    if (pruned && pruned.content_hash !== hash && r.measurements.length > pruned.measurement_count) {
      this.tombstones.drop(device.id, 'rum', key);
      this.reviveReport.run(pruned.report_pk, device.id, key, generatedAt, now, hash, raw, r.measurements.length, JSON.stringify([r.tag]));
      this.pending(pruned.report_pk, now, true);
      pk = pruned.report_pk;
      outcome = 'replaced';
    } else if (!prev) {
      pk = Number(this.insertReport.run(device.id, key, generatedAt, now, hash, raw, r.measurements.length, JSON.stringify([r.tag])).lastInsertRowid);
      this.pending(pk, now);
      outcome = 'accepted';
    } else if (prev.content_hash === hash) {
      return 'duplicate';
    } else if (r.measurements.length > prev.measurement_count) {
      this.replaceReport.run(raw, hash, r.measurements.length, generatedAt, now, prev.id);
      this.pending(prev.id, now, true);
      pk = prev.id;
      outcome = 'replaced';
    } else {
      return 'superseded'; // an earlier, shorter copy of a report already held in full
    }

    const lastSeen = Math.max(device.last_seen_at ?? 0, generatedAt);
    let status: 'active' | 'stale';
    if (lastSeen < now - opts.staleAfterDays * DAY_MS) {
      // Already past the stale age: it would be staled at the next evaluation, its usage
      // dropping then; it is stale now instead, its usage out of the VA (once: conditional).
      if (device.status === 'active' && this.markStale.run(device.id).changes > 0) {
        touched.push(...this.licenses.ledger.release(device.id, device.va_id));
        this.events.append('device.stale', 'rum-import', device.id, device.va_id, { lastSeenAt: toIso(lastSeen), atImport: true });
      }
      status = 'stale';
      track.stale.set(device.id, { ...device, last_seen_at: lastSeen });
    } else {
      // A stale device counts again: its usage goes back first (once: the change is conditional), then the new measurement applies.
      if (device.status === 'stale' && this.devices.reactivateStale(device.id)) touched.push(...this.licenses.ledger.restore(device.id, device.va_id));
      status = 'active';
      track.stale.delete(device.id);
    }
    const live = { ...device, status };
    const latest = r.measurements.reduce((a, m) => (m.end >= a.end ? m : a));
    if (this.licenses.ledger.apply(live, r.tag, latest.count, latest.end * 1000, pk) && status === 'active') touched.push({ vaId: device.va_id, tag: r.tag });
    this.devices.update(device.id, {
      last_seen_at: lastSeen,
      ...(r.softwareVersion ? { software_version: r.softwareVersion } : {}),
    });
    return outcome;
  }
}

/** What an import learns about devices across its slices, summed up in the result at the end. */
interface ImportTrack {
  created?: number;
  stale: Map<string, DeviceRow>;
  otherVa: Map<string, DeviceRow>;
}

function summarize(result: RumImportResult, track: ImportTrack, vaName: (id: string) => string): void {
  result.devicesCreated = track.created ?? 0;
  const listed = (d: DeviceRow): ListedDevice => ({
    deviceId: d.id, udi: `${d.udi_pid}:${d.udi_serial}`, vaId: d.va_id, vaName: vaName(d.va_id), lastReportAt: toIso(d.last_seen_at),
  });
  result.stale = track.stale.size;
  result.staleDevices = [...track.stale.values()].slice(0, LIST_LIMIT).map(listed);
  result.otherVa = track.otherVa.size;
  result.otherVaDevices = [...track.otherVa.values()].slice(0, LIST_LIMIT).map(listed);
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

/** The latest measurement end (a loop: spreading a long array into Math.max overflows the stack). */
function lastEnd(r: RumReport): number {
  let end = 0;
  for (const m of r.measurements) if (m.end > end) end = m.end;
  return end;
}

function signedByDevice(device: DeviceRow): string {
  return `device ${device.udi_pid}:${device.udi_serial} reports with its own key; a RUM file does not change it (import with --override-signed to do so)`;
}

function deregistered(device: DeviceRow): string {
  return `device ${device.udi_pid}:${device.udi_serial} is deregistered`;
}
