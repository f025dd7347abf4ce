import type { Db } from '../../src/store/open.js';
import { Ledger } from '../../src/licenses/ledger.js';
import { scanRum } from '../../src/rum/scan.js';
import { parseRumReport } from '../../src/rum/report.js';

/**
 * The count invariants, read straight from SQLite. Each returns a list of violations (empty
 * when it holds), each naming the VA, device and tag and both sides, so a failing property
 * run says what drifted, not just that something did.
 */

interface Measurement {
  tag: string;
  count: number;
  /** ms, as device_usage.period_end holds it */
  end: number;
}

/** The measurements a stored report holds, whatever its source. */
export function storedMeasurements(source: string, body: string): Measurement[] {
  if (source === 'device') {
    const r = JSON.parse(body) as { measurements: { tag: string; count: number; end: number }[] };
    return r.measurements.map((m) => ({ tag: m.tag, count: m.count, end: m.end * 1000 }));
  }
  const el = scanRum(body).elements[0];
  const r = el ? parseRumReport(el.content) : { reason: 'no element' };
  if ('reason' in r) throw new Error(`a stored RUM report does not parse: ${r.reason}`);
  return r.measurements.map((m) => ({ tag: r.tag, count: m.count, end: m.end * 1000 }));
}

const isZero = (u: { inUse: number; devices: number } | undefined) => !u || (u.inUse === 0 && u.devices === 0);

/** (a) Each VA's va_usage equals the sum over its active devices' device_usage (0/0 rows count as absent). */
export function vaUsageViolations(db: Db): string[] {
  const ledger = new Ledger(db);
  const actual = ledger.recompute();
  const stored = ledger.stored();
  const out: string[] = [];
  for (const key of new Set([...actual.keys(), ...stored.keys()])) {
    const a = actual.get(key);
    const s = stored.get(key);
    if (isZero(a) && isZero(s)) continue;
    if (a?.inUse !== s?.inUse || a?.devices !== s?.devices) {
      const [va, tag] = key.split('\u0000');
      out.push(
        `(a) va_usage of ${va} / ${tag} is in_use=${s?.inUse ?? 0} devices=${s?.devices ?? 0}, ` +
          `but its active devices sum to in_use=${a?.inUse ?? 0} devices=${a?.devices ?? 0}`,
      );
    }
  }
  return out;
}

/**
 * (b) Each device's device_usage per tag is the measurement with the latest period end among its
 * stored reports; a deregistered device has none. `floors` gives, for devices deregistered at
 * some point, the highest report pk at that moment: only later reports build their usage again,
 * and for those the check is the weaker "no later report holds a later period end" (a RUM
 * report replaced in place keeps its older pk).
 */
export function deviceUsageViolations(db: Db, floors: ReadonlyMap<string, number> = new Map()): string[] {
  const out: string[] = [];
  const devices = db.prepare('SELECT id, status FROM devices').all() as { id: string; status: string }[];
  const reportsOf = db.prepare('SELECT id, source, body FROM reports WHERE device_id = ?');
  const usageOf = db.prepare('SELECT tag, count, period_end, report_pk FROM device_usage WHERE device_id = ?');
  for (const d of devices) {
    const usage = usageOf.all(d.id) as { tag: string; count: number; period_end: number; report_pk: number }[];
    if (d.status === 'deregistered') {
      if (usage.length) out.push(`(b) deregistered device ${d.id} still has device_usage for ${usage.map((u) => u.tag).join(', ')}`);
      continue;
    }
    const floor = floors.get(d.id);
    const reports = (reportsOf.all(d.id) as { id: number; source: string; body: string }[]).map((r) => ({ pk: r.id, ms: storedMeasurements(r.source, r.body) }));
    // Per tag: the latest end and the counts measured at it, over the reports that count.
    const latest = new Map<string, { end: number; counts: Set<number> }>();
    for (const r of reports) {
      if (floor !== undefined && r.pk <= floor) continue;
      for (const m of r.ms) {
        const cur = latest.get(m.tag);
        if (!cur || m.end > cur.end) latest.set(m.tag, { end: m.end, counts: new Set([m.count]) });
        else if (m.end === cur.end) cur.counts.add(m.count);
      }
    }
    const byTag = new Map(usage.map((u) => [u.tag, u]));
    for (const u of usage) {
      const source = reports.find((r) => r.pk === u.report_pk);
      if (!source || !source.ms.some((m) => m.tag === u.tag && m.end === u.period_end && m.count === u.count)) {
        out.push(`(b) device ${d.id} / ${u.tag}: device_usage count=${u.count} end=${u.period_end} is in no stored report of the device (report_pk ${u.report_pk})`);
      }
    }
    for (const [tag, l] of latest) {
      const u = byTag.get(tag);
      if (!u) {
        out.push(`(b) device ${d.id} / ${tag}: stored reports measure ${[...l.counts].join('|')} at end=${l.end}, but device_usage has no row`);
      } else if (floor === undefined ? u.period_end !== l.end || !l.counts.has(u.count) : u.period_end < l.end) {
        out.push(`(b) device ${d.id} / ${tag}: device_usage count=${u.count} end=${u.period_end}, but the latest stored measurement is ${[...l.counts].join('|')} at end=${l.end}`);
      }
    }
    if (floor === undefined) {
      for (const u of usage) if (!latest.has(u.tag)) out.push(`(b) device ${d.id} / ${u.tag}: device_usage without any stored report of that tag`);
    }
  }
  return out;
}

/**
 * (c) No deregistered device is active, and nothing but a re-registration brought one back: the
 * audit trail orders deregistrations and re-registrations, so a device whose last such event
 * is a deregistration must still be deregistered.
 */
export function lifecycleViolations(db: Db): string[] {
  const out: string[] = [];
  const rows = db
    .prepare(
      `SELECT d.id, d.status,
         (SELECT e.type FROM events e WHERE e.subject = d.id AND e.type IN ('device.deregistered', 'device.re_registered', 'device.rekeyed') ORDER BY e.id DESC LIMIT 1) AS last
       FROM devices d`,
    )
    .all() as { id: string; status: string; last: string | null }[];
  for (const r of rows) {
    if (r.last === 'device.deregistered' && r.status !== 'deregistered') {
      out.push(`(c) device ${r.id} was deregistered and never re-registered, but its status is ${r.status}`);
    }
  }
  return out;
}

export function countViolations(db: Db, floors?: ReadonlyMap<string, number>): string[] {
  return [...vaUsageViolations(db), ...deviceUsageViolations(db, floors), ...lifecycleViolations(db)];
}
