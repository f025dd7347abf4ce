import type { Db } from '../store/open.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import type { Ledger } from './ledger.js';
import { scanRum } from '../rum/scan.js';
import { parseRumReport } from '../rum/report.js';

const DONE = 'repair_future_periods_v1';

interface Best {
  count: number;
  end: number;
  pk: number;
}

/**
 * Databases written before periods were bounded may hold a measurement ending far ahead (the
 * year 3000 once): it pins a device's count, since later reports end earlier and never
 * replace it. Run once per database at start: each such (device, tag) falls back to its
 * latest stored measurement that ends within `limit`, or to nothing; the VA counters are
 * rebuilt; an alert names the devices. New reports cannot bring such a period back: signed
 * ones and RUM files are both refused when a period ends too far ahead.
 */
export function repairFuturePeriods(db: Db, ledger: Ledger, alerts: AlertService, events: EventService, now: number, maxSkewMs: number): string[] {
  if (db.prepare('SELECT 1 FROM meta WHERE key = ?').get(DONE)) return [];
  const limit = now + maxSkewMs;
  return db.transaction(() => {
    const pinned = db.prepare('SELECT device_id, tag, period_end FROM device_usage WHERE period_end > ?').all(limit) as {
      device_id: string;
      tag: string;
      period_end: number;
    }[];
    const fix = db.prepare('UPDATE device_usage SET count = ?, period_end = ?, report_pk = ? WHERE device_id = ? AND tag = ?');
    const drop = db.prepare('DELETE FROM device_usage WHERE device_id = ? AND tag = ?');
    for (const p of pinned) {
      const best = bestWithin(db, p.device_id, p.tag, limit);
      if (best) fix.run(best.count, best.end, best.pk, p.device_id, p.tag);
      else drop.run(p.device_id, p.tag);
    }
    const devices = [...new Set(pinned.map((p) => p.device_id))].sort();
    if (devices.length) {
      ledger.replaceAll(ledger.recompute());
      events.append('usage.future_periods_repaired', 'system', null, null, { devices, limit: new Date(limit).toISOString() });
      alerts.raise('future_period', {
        subject: 'usage',
        severity: 'warning',
        message: `${devices.length} device(s) had usage ending far in the future; their counts were recomputed from their other reports: check them`,
        details: { devices: devices.slice(0, 100), more: Math.max(0, devices.length - 100) },
      });
    }
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(DONE, String(now));
    return devices;
  })();
}

/** The latest measurement of a tag among a device's stored reports that ends by `limit` (ms). */
function bestWithin(db: Db, deviceId: string, tag: string, limit: number): Best | null {
  const rows = db.prepare('SELECT id, source, body FROM reports WHERE device_id = ?').iterate(deviceId) as Iterable<{ id: number; source: string; body: string }>;
  let best: Best | null = null;
  const consider = (count: number, endSeconds: number, pk: number) => {
    const end = endSeconds * 1000;
    if (end <= limit && (!best || end >= best.end)) best = { count, end, pk };
  };
  for (const r of rows) {
    if (r.source === 'device') {
      const report = JSON.parse(r.body) as { measurements: { tag: string; count: number; end: number }[] };
      for (const m of report.measurements) if (m.tag === tag) consider(m.count, m.end, r.id);
    } else {
      for (const el of scanRum(r.body).elements) {
        const parsed = parseRumReport(el.content);
        if ('reason' in parsed || parsed.tag !== tag) continue;
        for (const m of parsed.measurements) consider(m.count, m.end, r.id);
      }
    }
  }
  return best;
}
