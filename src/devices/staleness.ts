import { DAY_MS, toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AlertService, AlertSpec } from '../alerts/service.js';
import type { LicenseService } from '../licenses/service.js';
import type { UsageKey } from '../licenses/ledger.js';
import type { DeviceRepository, DeviceRow } from './repository.js';
import { Pacer } from '../shared/pacer.js';

export interface StalenessDeps {
  db: Db;
  clock: Clock;
  events: EventService;
  alerts: AlertService;
  licenses: LicenseService;
  repo: DeviceRepository;
  staleAfterDays: number;
  reportingIntervalDays: number;
  /** The alert of a device whose re-key waits for an operator. */
  rekeyAlert: (d: DeviceRow) => AlertSpec;
}

// Measured at 1,000,000 devices on a small 2-core machine: a window of 10,000 rows reads in
// about 15 ms; marking one device stale costs about 40 µs (its row, its index entry, its
// event), so 500 a slice is about 20 ms.
/** Rows of devices one slice reads (the table has no index on last_seen_at: it is scanned). */
const SCAN_WINDOW = 10_000;
/** Devices one slice marks stale. */
const STALE_PER_SLICE = 500;
/** Alerts of a past evaluation one slice clears (per-device alerts of earlier versions at first). */
const CLEAR_PER_SLICE = 5_000;

/** The statements of an evaluation: set-based, each bounded by a window of rowids and a limit. */
class StaleDevices {
  readonly maxRowid;
  readonly release;
  readonly mark;
  readonly summary;
  readonly rekeys;
  readonly vaNames;
  constructor(db: Db) {
    this.maxRowid = db.prepare('SELECT coalesce(max(rowid), 0) FROM devices').pluck();
    const due = `SELECT rowid FROM devices WHERE rowid > :lo AND rowid <= :hi AND status = 'active'
                 AND coalesce(last_seen_at, registered_at) < :before ORDER BY rowid LIMIT :limit`;
    // The usage of exactly the devices the next statement marks, taken out of their VAs' counters.
    this.release = db.prepare(
      `INSERT INTO va_usage (va_id, tag, in_use, devices)
       SELECT d.va_id, u.tag, -sum(u.count), -count(*) FROM devices d JOIN device_usage u ON u.device_id = d.id
       WHERE d.rowid IN (${due}) GROUP BY d.va_id, u.tag
       ON CONFLICT (va_id, tag) DO UPDATE SET in_use = in_use + excluded.in_use, devices = devices + excluded.devices
       RETURNING va_id, tag`,
    );
    this.mark = db.prepare(
      `UPDATE devices SET status = 'stale' WHERE rowid IN (${due})
       RETURNING rowid, id, va_id, last_seen_at, registered_at`,
    );
    this.summary = db.prepare(
      `SELECT va_id,
         sum(status = 'stale') AS stale,
         min(CASE WHEN status = 'stale' THEN coalesce(last_seen_at, registered_at) END) AS stale_since,
         sum(status = 'active' AND coalesce(last_seen_at, registered_at) < :silentBefore) AS silent,
         min(CASE WHEN status = 'active' THEN coalesce(last_seen_at, registered_at) END) AS silent_since
       FROM devices WHERE rowid > :lo AND rowid <= :hi AND status IN ('stale', 'active') GROUP BY va_id`,
    );
    this.rekeys = db.prepare('SELECT * FROM devices WHERE rowid > :lo AND rowid <= :hi AND pending_public_key IS NOT NULL');
    this.vaNames = db.prepare('SELECT id, name FROM virtual_accounts');
  }
}

interface VaCount {
  stale: number;
  staleSince: number | null;
  silent: number;
  silentSince: number | null;
}

/** The evaluation under way for each store: one runs at a time. */
const running = new WeakMap<DeviceRepository, Promise<{ staled: number }>>();

/**
 * Scheduled: devices silent past the stale age are marked stale and release their licenses;
 * devices silent past the policy's reporting interval are counted for the "silent" alert;
 * devices whose re-key waits for an operator keep their alert.
 *
 * Set-based and sliced, so a million devices never hold the event loop: each slice marks at
 * most a bounded number of devices within a window of rows, and in the same transaction takes
 * exactly their usage out of their VAs' counters by an SQL aggregate (the marking is
 * conditional on `active`, so a device is released once). The event loop runs between
 * slices, paced (see Pacer); a small store is evaluated in one go, before this returns. One
 * evaluation runs at a time: a call while one is under way gets that one.
 *
 * Alerts are one per VA, not one per device: at a million devices a per-device alert is a
 * million rows an operator cannot read, each written in turn. The VA's alert says how many
 * devices and since when; `outpost devices --status stale` lists them.
 */
export function evaluateStaleness(d: StalenessDeps): Promise<{ staled: number }> {
  const held = running.get(d.repo);
  if (held) return held;
  const run = evaluate(d).finally(() => running.delete(d.repo));
  running.set(d.repo, run);
  return run;
}

async function evaluate(d: StalenessDeps): Promise<{ staled: number }> {
  const q = new StaleDevices(d.db);
  const pacer = new Pacer();
  // Lets the event loop (and the disk) serve devices; false if the store was closed meanwhile
  // (shutdown): the evaluation stops there.
  const nextTurnOpen = async () => {
    await pacer.pause();
    return d.db.open;
  };
  const now = d.clock.now();
  const staleBefore = now - d.staleAfterDays * DAY_MS;
  const silentBefore = now - d.reportingIntervalDays * DAY_MS;
  const top = q.maxRowid.get() as number;

  let staled = 0;
  const markSlice = d.db.transaction((lo: number, hi: number) => {
    const args = { lo, hi, before: staleBefore, limit: STALE_PER_SLICE };
    const keys = q.release.all(args) as { va_id: string; tag: string }[];
    const rows = q.mark.all(args) as (Pick<DeviceRow, 'id' | 'va_id' | 'last_seen_at' | 'registered_at'> & { rowid: number })[];
    if (!rows.length) return { n: 0, last: hi };
    for (const r of rows) d.events.append('device.stale', 'system', r.id, r.va_id, { lastSeenAt: toIso(r.last_seen_at) });
    d.licenses.refreshAlerts(keys.map((k): UsageKey => ({ vaId: k.va_id, tag: k.tag })));
    return { n: rows.length, last: rows.length === STALE_PER_SLICE ? rows[rows.length - 1]!.rowid : hi };
  });
  for (let lo = 0; lo < top; ) {
    const hi = Math.min(lo + SCAN_WINDOW, top);
    const { n, last } = markSlice(lo, hi);
    staled += n;
    lo = last;
    if (lo < top && !(await nextTurnOpen())) return { staled };
  }

  const byVa = new Map<string, VaCount>();
  const rekeys: AlertSpec[] = [];
  for (let lo = 0; lo < top; lo += SCAN_WINDOW) {
    for (const r of q.rekeys.all({ lo, hi: lo + SCAN_WINDOW }) as DeviceRow[]) rekeys.push(d.rekeyAlert(r));
    const rows = q.summary.all({ lo, hi: lo + SCAN_WINDOW, silentBefore }) as {
      va_id: string; stale: number; stale_since: number | null; silent: number; silent_since: number | null;
    }[];
    for (const r of rows) {
      const c = byVa.get(r.va_id) ?? { stale: 0, staleSince: null, silent: 0, silentSince: null };
      c.stale += r.stale;
      c.staleSince = earliest(c.staleSince, r.stale_since);
      c.silent += r.silent;
      if (r.silent) c.silentSince = earliest(c.silentSince, r.silent_since);
      byVa.set(r.va_id, c);
    }
    if (lo + SCAN_WINDOW < top && !(await nextTurnOpen())) return { staled };
  }

  const names = new Map((q.vaNames.all() as { id: string; name: string }[]).map((v) => [v.id, v.name]));
  const stale: AlertSpec[] = [];
  const silent: AlertSpec[] = [];
  for (const [vaId, c] of byVa) {
    const va = names.get(vaId) ?? vaId;
    if (c.stale) {
      stale.push({
        subject: vaId,
        severity: 'warning',
        message: `${c.stale} device(s) in ${va} have been silent for more than ${d.staleAfterDays} days and no longer count (the longest since ${toIso(c.staleSince)})`,
        details: { vaId, devices: c.stale, oldestLastSeenAt: toIso(c.staleSince) },
      });
    }
    if (c.silent) {
      silent.push({
        subject: vaId,
        severity: 'warning',
        message: `${c.silent} device(s) in ${va} have not reported within the ${d.reportingIntervalDays}-day reporting interval (the longest since ${toIso(c.silentSince)})`,
        details: { vaId, devices: c.silent, oldestLastSeenAt: toIso(c.silentSince) },
      });
    }
  }
  for (const [kind, specs] of [['device_stale', stale], ['device_silent', silent], ['rekey_pending', rekeys]] as const) {
    d.db.transaction(() => {
      for (const a of specs) d.alerts.raise(kind, a);
    })();
    const keep = specs.map((a) => a.subject);
    while (d.db.transaction(() => d.alerts.clearOthers(kind, keep, CLEAR_PER_SLICE))() === CLEAR_PER_SLICE) {
      if (!(await nextTurnOpen())) return { staled };
    }
  }
  return { staled };
}

const earliest = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
