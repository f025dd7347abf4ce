import { createHmac } from 'node:crypto';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { PayloadSource } from './write.js';
import { PAYLOAD, type DeviceRecord, type UsageSummaryRecord, type VaRecord } from './records.js';

const CHUNK = 5000;
/** reports.tags holds the tags newline-separated (tags contain commas); this makes them a JSON array. */
const TAGS_AS_JSON = `CASE WHEN r.tags = '' THEN '[]' ELSE '["' || replace(replace(replace(r.tags, '\\\\', '\\\\\\\\'), '"', '\\\\"'), char(10), '","') || '"]' END`;

/** How hostnames leave: as they are, or as a keyed hash whose key never leaves the site. */
export function hostnameMapper(key: Buffer | null): (h: string) => string {
  if (!key) return (h) => h;
  return (h) => 'hmac-sha256:' + createHmac('sha256', key).update(h).digest('hex').slice(0, 32);
}

/**
 * The payloads of a usage bundle, read from a store in chunks: every report not yet
 * acknowledged, the devices, the VA list (local ones are proposals) and a usage summary.
 * Used by the export worker on its own snapshot, or inline where no worker can run.
 */
export function usagePayloads(db: Db, hostname: (h: string) => string): PayloadSource[] {
  return [
    { name: PAYLOAD.reports, records: pendingReports(db) },
    { name: PAYLOAD.devices, records: devices(db, hostname) },
    { name: PAYLOAD.virtualAccounts, records: virtualAccounts(db) },
    { name: PAYLOAD.usageSummary, records: usageSummary(db) },
  ];
}

/**
 * The unacknowledged reports, as NDJSON lines built by SQLite itself (json_object escapes
 * the bodies in C): about three times faster than building objects and stringifying them
 * in JavaScript, which at millions of reports is the difference that matters. Every pending
 * report goes, so that an ACK for a run of refs covers exactly what was sent.
 */
async function* pendingReports(db: Db): AsyncGenerator<string> {
  const stmt = db
    .prepare(
      `SELECT p.report_id, json_object('ref', r.id, 'udi', d.udi_pid || ':' || d.udi_serial, 'source', r.source, 'reportId', r.report_id,
              'seq', r.seq, 'generatedAt', r.generated_at / 1000, 'tags', json(${TAGS_AS_JSON}), 'measurements', r.measurement_count,
              'body', r.body)
       FROM report_pending p JOIN reports r ON r.id = p.report_id LEFT JOIN devices d ON d.id = r.device_id
       WHERE p.report_id > ? ORDER BY p.report_id LIMIT ${CHUNK}`,
    )
    .raw();
  let after = 0;
  for (;;) {
    const rows = stmt.all(after) as [number, string][];
    if (!rows.length) return;
    let text = '';
    for (const r of rows) text += r[1] + '\n';
    yield text;
    after = rows[rows.length - 1]![0];
  }
}

async function* devices(db: Db, hostname: (h: string) => string): AsyncGenerator<DeviceRecord> {
  const stmt = db.prepare(
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
  }
}

function* virtualAccounts(db: Db): Generator<VaRecord> {
  const rows = db.prepare('SELECT id, name, origin FROM virtual_accounts ORDER BY name COLLATE NOCASE').all() as { id: string; name: string; origin: VaRecord['origin'] }[];
  for (const va of rows) yield { vaId: va.id, name: va.name, origin: va.origin };
}

function* usageSummary(db: Db): Generator<UsageSummaryRecord> {
  const rows = db.prepare('SELECT va_id, tag, in_use, devices FROM va_usage ORDER BY va_id, tag').all() as {
    va_id: string; tag: string; in_use: number; devices: number;
  }[];
  for (const r of rows) yield { vaId: r.va_id, tag: r.tag, inUse: r.in_use, devices: r.devices };
}
