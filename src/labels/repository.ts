import type { Db } from '../store/open.js';

export interface LabelRow {
  id: string;
  name: string;
  name_key: string;
  colour: string;
  description: string;
  created_at: number;
  updated_at: number;
}

/** What a device or an entitlement line shows of each label it carries. */
export interface LabelRef {
  name: string;
  colour: string;
}

/** Names compare without case: "Core" and "core" are one label. */
export const nameKey = (name: string): string => name.toLowerCase();

/** The SQL condition "this device carries every one of these labels", each a range of the primary key. */
export function deviceLabelTerms(labelIds: readonly string[], idColumn = 'id'): { sql: string[]; args: string[] } {
  return { sql: labelIds.map(() => `${idColumn} IN (SELECT device_id FROM device_labels WHERE label_id = ?)`), args: [...labelIds] };
}

export class LabelRepository {
  private ofDeviceStmt;
  private ofLineStmt;
  constructor(private db: Db) {
    this.ofDeviceStmt = db.prepare(
      'SELECT l.name, l.colour FROM device_labels dl JOIN labels l ON l.id = dl.label_id WHERE dl.device_id = ? ORDER BY l.name_key',
    );
    this.ofLineStmt = db.prepare(
      'SELECT l.name, l.colour FROM line_labels ll JOIN labels l ON l.id = ll.label_id WHERE ll.line_id = ? ORDER BY l.name_key',
    );
  }

  ofDevice(deviceId: string): LabelRef[] {
    return this.ofDeviceStmt.all(deviceId) as LabelRef[];
  }
  ofLine(lineId: string): LabelRef[] {
    return this.ofLineStmt.all(lineId) as LabelRef[];
  }

  /** Whether the line carries every one of these labels. */
  lineCarries(lineId: string, labelIds: readonly string[]): boolean {
    const has = this.db.prepare('SELECT 1 FROM line_labels WHERE label_id = ? AND line_id = ?').pluck();
    return labelIds.every((id) => has.get(id, lineId) !== undefined);
  }

  list(): LabelRow[] {
    return this.db.prepare('SELECT * FROM labels ORDER BY name_key').all() as LabelRow[];
  }
  byKey(key: string): LabelRow | undefined {
    return this.db.prepare('SELECT * FROM labels WHERE name_key = ?').get(key) as LabelRow | undefined;
  }
  /** By name (any case) or id. */
  find(nameOrId: string): LabelRow | undefined {
    return (this.db.prepare('SELECT * FROM labels WHERE id = ?').get(nameOrId) as LabelRow | undefined) ?? this.byKey(nameKey(nameOrId));
  }
  insert(r: LabelRow): void {
    this.db
      .prepare('INSERT INTO labels (id, name, name_key, colour, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(r.id, r.name, r.name_key, r.colour, r.description, r.created_at, r.updated_at);
  }
  update(r: LabelRow): void {
    this.db
      .prepare('UPDATE labels SET name = ?, name_key = ?, colour = ?, description = ?, updated_at = ? WHERE id = ?')
      .run(r.name, r.name_key, r.colour, r.description, r.updated_at, r.id);
  }
  delete(id: string): void {
    this.db.prepare('DELETE FROM labels WHERE id = ?').run(id);
  }

  /**
   * How many devices and lines carry the label, among those of these VAs (null: every VA). For
   * every VA it is a count of a primary key range, without reading a device (a label on 30,000
   * devices: 1 ms where the join takes 25).
   */
  counts(labelId: string, vaIds: readonly string[] | null): { devices: number; lines: number } {
    if (vaIds === null) {
      return {
        devices: this.db.prepare('SELECT count(*) FROM device_labels WHERE label_id = ?').pluck().get(labelId) as number,
        lines: this.db.prepare('SELECT count(*) FROM line_labels WHERE label_id = ?').pluck().get(labelId) as number,
      };
    }
    let devices = 0;
    let lines = 0;
    for (const [va, u] of this.usageByVa(labelId)) if (vaIds.includes(va)) (devices += u.devices), (lines += u.lines);
    return { devices, lines };
  }

  /** Per VA, how many of its devices and lines carry the label (VAs where it is on nothing are absent). */
  usageByVa(labelId: string): Map<string, { devices: number; lines: number }> {
    const out = new Map<string, { devices: number; lines: number }>();
    const at = (va: string) => out.get(va) ?? (out.set(va, { devices: 0, lines: 0 }), out.get(va)!);
    const devices = this.db
      .prepare('SELECT d.va_id, count(*) AS n FROM device_labels dl JOIN devices d ON d.id = dl.device_id WHERE dl.label_id = ? GROUP BY d.va_id')
      .all(labelId) as { va_id: string; n: number }[];
    for (const r of devices) at(r.va_id).devices = r.n;
    const lines = this.db
      .prepare('SELECT e.va_id, count(*) AS n FROM line_labels ll JOIN entitlements e ON e.id = ll.line_id WHERE ll.label_id = ? GROUP BY e.va_id')
      .all(labelId) as { va_id: string; n: number }[];
    for (const r of lines) at(r.va_id).lines = r.n;
    return out;
  }

  /**
   * Attaches to the devices the SELECT yields (its first column the device id, then the VA);
   * returns per VA how many devices newly carry the label.
   */
  attachDevices(labelId: string, select: { sql: string; args: unknown[] }): Map<string, number> {
    const rows = this.db
      .prepare(
        `INSERT INTO device_labels (label_id, device_id) SELECT ?, id FROM (${select.sql}) WHERE true
         ON CONFLICT DO NOTHING RETURNING device_id`,
      )
      .all(labelId, ...select.args) as { device_id: string }[];
    return this.perVa('devices', rows.map((r) => r.device_id));
  }
  detachDevices(labelId: string, select: { sql: string; args: unknown[] }): Map<string, number> {
    const rows = this.db
      .prepare(`DELETE FROM device_labels WHERE label_id = ? AND device_id IN (SELECT id FROM (${select.sql})) RETURNING device_id`)
      .all(labelId, ...select.args) as { device_id: string }[];
    return this.perVa('devices', rows.map((r) => r.device_id));
  }
  attachLines(labelId: string, select: { sql: string; args: unknown[] }): Map<string, number> {
    const rows = this.db
      .prepare(
        `INSERT INTO line_labels (label_id, line_id) SELECT ?, id FROM (${select.sql}) WHERE true
         ON CONFLICT DO NOTHING RETURNING line_id`,
      )
      .all(labelId, ...select.args) as { line_id: string }[];
    return this.perVa('entitlements', rows.map((r) => r.line_id));
  }
  /** Detached lines are forgotten by the snapshot carry too: the next snapshot must not give the label back. */
  detachLines(labelId: string, select: { sql: string; args: unknown[] }): Map<string, number> {
    const rows = this.db
      .prepare(`DELETE FROM line_labels WHERE label_id = ? AND line_id IN (SELECT id FROM (${select.sql})) RETURNING line_id`)
      .all(labelId, ...select.args) as { line_id: string }[];
    const forget = this.db.prepare(
      `DELETE FROM line_label_carry WHERE label_id = ? AND (va_id, tag, kind, starts_at, ends_at) =
         (SELECT va_id, tag, kind, starts_at, coalesce(ends_at, -1) FROM entitlements WHERE id = ?)`,
    );
    for (const r of rows) forget.run(labelId, r.line_id);
    return this.perVa('entitlements', rows.map((r) => r.line_id));
  }

  private perVa(table: 'devices' | 'entitlements', ids: string[]): Map<string, number> {
    const out = new Map<string, number>();
    const vaOf = this.db.prepare(`SELECT va_id FROM ${table} WHERE id = ?`).pluck();
    for (const id of ids) {
      const va = vaOf.get(id) as string;
      out.set(va, (out.get(va) ?? 0) + 1);
    }
    return out;
  }
}
