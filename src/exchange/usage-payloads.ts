import { createHmac } from 'node:crypto';
import type { Db } from '../store/open.js';
import { NdjsonChunk, type PayloadSource } from './write.js';
import { PAYLOAD, type TransferRecord, type UsageSummaryRecord, type VaRecord } from './records.js';

const CHUNK = 1000;

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
export function usagePayloads(db: Db, hostname: (h: string) => string, part?: PartLimits, reach: PartReach = { lastRef: part?.after ?? 0, cut: false }): PayloadSource[] {
  if (part) {
    // A part of a sync: the first pending reports up to its bounds, and the devices they name
    // (or every device, when the part is asked to carry the full list).
    return [
      { name: PAYLOAD.reports, records: pendingReports(db, part, reach) },
      { name: PAYLOAD.devices, records: devices(db, hostname, deviceSelection(part, reach)) },
      { name: PAYLOAD.virtualAccounts, records: virtualAccounts(db) },
      { name: PAYLOAD.usageSummary, records: usageSummary(db) },
      ...transfersPayload(db),
    ];
  }
  return [
    { name: PAYLOAD.reports, records: pendingReports(db) },
    { name: PAYLOAD.devices, records: devices(db, hostname) },
    { name: PAYLOAD.virtualAccounts, records: virtualAccounts(db) },
    { name: PAYLOAD.usageSummary, records: usageSummary(db) },
    ...transfersPayload(db),
  ];
}

/**
 * The provisional license transfers, in every bundle (and every part of a sync) until the
 * upstream answers them; the upstream applies each once. Listed only when there is one: its
 * presence makes the bundle format version 2, which an upstream older than transfers refuses.
 */
function transfersPayload(db: Db): PayloadSource[] {
  const rows = db.prepare("SELECT * FROM license_transfers WHERE state = 'provisional' ORDER BY requested_at, id").all() as {
    id: string; from_va_id: string; to_va_id: string; tag: string; quantity: number; reason: string | null; requested_at: number; pieces: string;
  }[];
  if (!rows.length) return [];
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const records: TransferRecord[] = rows.map((r) => ({
    transferId: r.id, fromVaId: r.from_va_id, toVaId: r.to_va_id, tag: r.tag, quantity: r.quantity, reason: r.reason, requestedAt: iso(r.requested_at)!,
    lines: (JSON.parse(r.pieces) as { kind: TransferRecord['lines'][number]['kind']; quantity: number; startsAt: number; endsAt: number | null }[]).map((p) => ({
      kind: p.kind, quantity: p.quantity, startsAt: iso(p.startsAt)!, endsAt: iso(p.endsAt),
    })),
  }));
  return [{ name: PAYLOAD.transfers, records }];
}

/** Unix milliseconds as the ISO 8601 text that Date#toISOString writes, or JSON null. */
const isoTime = (col: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${col} / 1000.0, 'unixepoch')`;

/**
 * Runs a chunked query whose rows are NDJSON lines, SQLite joining each chunk of lines into
 * one BLOB. At millions of reports this is what makes an export fast: the lines are built and
 * escaped in C, and they reach the gzip stream as bytes, never as JavaScript strings (which
 * would cost a UTF-8 decode, a concatenation and an encode per line). `lines` selects
 * `key` (ascending, the resume point) and `line`, and takes the last key as its parameter.
 */
function* ndjsonChunks(db: Db, lines: string, first: string | number, limit?: { records: number; bytes: number; reach?: PartReach }): Generator<NdjsonChunk> {
  const stmt = db
    .prepare(`SELECT max(key), count(*), CAST(group_concat(line, char(10)) || char(10) AS BLOB) FROM (${lines} LIMIT ?)`)
    .raw();
  let after: string | number = first;
  let records = 0;
  let bytes = 0;
  for (;;) {
    const take = limit ? Math.min(CHUNK, limit.records - records) : CHUNK;
    if (take <= 0) {
      // Full: more wait only if there is a next report (else the next part would carry none).
      if (limit!.reach) limit!.reach.cut = Boolean((stmt.get(after, 1) as [unknown, number])[1]);
      return;
    }
    const [last, count, chunk] = stmt.get(after, take) as [string | number | null, number, Buffer | null];
    if (!count || last === null || !chunk) return;
    // A part stops before the chunk that would take it past its byte bound; the first chunk
    // always goes, so that a part makes progress whatever its reports weigh.
    if (limit && records > 0 && bytes + chunk.length > limit.bytes) return void (limit.reach && (limit.reach.cut = true));
    records += count;
    bytes += chunk.length;
    if (limit?.reach) limit.reach.lastRef = Number(last);
    yield new NdjsonChunk(chunk, count);
    after = last;
  }
}

/** The bounds of one part of a sync: a backlog goes up in consecutive parts, each answered before the next. */
export interface PartLimits {
  maxReports: number;
  /** Bytes of report lines before compression: the compressed part is smaller. */
  maxBytes: number;
  /**
   * Which devices the part carries: every one (once a day); those that any waiting report
   * names (the first part of a sync); or, with `arrivedSince`, those named by this part's
   * reports that arrived since the sync began: the rest went in its first part. At a backlog of
   * millions, carrying the same 100,000 devices in each of 30 parts was most of the upstream's work.
   */
  devices: 'all' | 'waiting' | { arrivedSince: number };
  /**
   * Start after this report ref (0: the first pending report). A sync builds the next part
   * while the upstream answers the one before, so the next part cannot wait for its ACKs.
   */
  after?: number;
}

/** How far a part reached: its last report ref, and whether a bound cut it (more reports wait). */
export interface PartReach {
  lastRef: number;
  cut: boolean;
}

/**
 * The unacknowledged reports (the ReportRecord shape). Every pending report goes, so that an
 * ACK for a run of refs covers exactly what was sent; refs ascend through the payload.
 */
function pendingReports(db: Db, part?: PartLimits, reach?: PartReach): Iterable<NdjsonChunk> {
  return ndjsonChunks(
    db,
    `SELECT r.id AS key, format('{"ref":%d,"udi":%s,"source":%s,"reportId":%s,"seq":%s,"generatedAt":%s,"tags":%s,"measurements":%d,"body":%s}',
       r.id, json_quote(d.udi_pid || ':' || d.udi_serial), json_quote(r.source), json_quote(r.report_id), coalesce(r.seq, 'null'),
       coalesce(r.generated_at / 1000, 'null'), r.tags_json, r.measurement_count, json_quote(r.body)) AS line
     FROM report_pending p JOIN reports r ON r.id = p.report_id LEFT JOIN devices d ON d.id = r.device_id
     WHERE p.destination = 'outpost' AND p.report_id > ? ORDER BY p.report_id`,
    part?.after ?? 0,
    part ? { records: part.maxReports, bytes: part.maxBytes, ...(reach ? { reach } : {}) } : undefined,
  );
}

/** The devices (the DeviceRecord shape); hostnames pass through the mapper, which may hash them. */
/** The SQL that lists a part's device ids, with its parameters; undefined: every device. */
function deviceSelection(part: PartLimits, reach: PartReach): (() => [string, unknown[]]) | undefined {
  const from = part.after ?? 0;
  const named = "SELECT r.device_id FROM report_pending p JOIN reports r ON r.id = p.report_id WHERE p.destination = 'outpost'";
  if (part.devices === 'all') return undefined;
  // Read when the devices payload starts: the reports payload has said how far it reached.
  if (part.devices === 'waiting') return () => [named, []];
  const since = part.devices.arrivedSince;
  return () => [`${named} AND p.report_id > ? AND p.report_id <= ? AND p.since >= ?`, [from, reach.lastRef, since]];
}

function* devices(db: Db, hostname: (h: string) => string, selection?: () => [string, unknown[]]): Iterable<NdjsonChunk> {
  db.function('export_hostname', { deterministic: true }, (h: unknown) => (typeof h === 'string' && h ? hostname(h) : ''));
  // Only the devices the part's reports name: read when this payload starts, after the reports
  // payload has been written and has said how far it reached. Gathered once into a temporary
  // table: as a subquery, each chunk's query read the part's reports again (at 100,000
  // devices, 100 reads of 100,000 reports, three quarters of a part's time).
  const of = selection?.();
  if (of) {
    db.exec('DROP TABLE IF EXISTS temp.part_devices; CREATE TEMP TABLE part_devices (id TEXT PRIMARY KEY) WITHOUT ROWID');
    db.prepare(`INSERT OR IGNORE INTO temp.part_devices ${of[0]}`).run(...of[1]);
  }
  try {
    yield* ndjsonChunks(
      db,
      `SELECT d.id AS key, json_object('deviceId', d.id, 'udi', d.udi_pid || ':' || d.udi_serial,
         'udis', (SELECT json_group_array(u.udi) FROM device_udis u WHERE u.device_id = d.id), 'vaId', d.va_id,
         'hostname', export_hostname(d.hostname), 'softwareVersion', d.software_version, 'status', d.status,
         'registeredAt', ${isoTime('d.registered_at')}, 'lastSeenAt', ${isoTime('d.last_seen_at')}) AS line
       FROM devices d WHERE d.id > ? ${of ? 'AND d.id IN (SELECT id FROM temp.part_devices)' : ''} ORDER BY d.id`,
      '',
    );
  } finally {
    if (of) db.exec('DROP TABLE IF EXISTS temp.part_devices');
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
