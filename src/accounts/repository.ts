import type { Db } from '../store/open.js';

export interface VaRow {
  id: string;
  name: string;
  description: string;
  origin: 'local' | 'upstream';
  created_at: number;
  updated_at: number;
}

export class AccountRepository {
  constructor(private db: Db) {}

  meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }
  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  get(id: string): VaRow | undefined {
    return this.db.prepare('SELECT * FROM virtual_accounts WHERE id = ?').get(id) as VaRow | undefined;
  }
  byName(name: string): VaRow | undefined {
    return this.db.prepare('SELECT * FROM virtual_accounts WHERE name = ? COLLATE NOCASE').get(name) as VaRow | undefined;
  }
  list(): VaRow[] {
    return this.db.prepare('SELECT * FROM virtual_accounts ORDER BY name COLLATE NOCASE').all() as VaRow[];
  }
  insert(r: VaRow): void {
    this.db
      .prepare('INSERT INTO virtual_accounts (id, name, description, origin, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(r.id, r.name, r.description, r.origin, r.created_at, r.updated_at);
  }
  update(id: string, name: string, description: string, at: number): void {
    this.db.prepare('UPDATE virtual_accounts SET name = ?, description = ?, updated_at = ? WHERE id = ?').run(name, description, at, id);
  }
  delete(id: string): void {
    this.db.prepare('DELETE FROM virtual_accounts WHERE id = ?').run(id);
  }
  /** What keeps a VA from being deleted; revoked and expired tokens do not. */
  contents(id: string, now: number): { devices: number; liveTokens: number; entitlements: number } {
    const n = (sql: string, ...args: unknown[]) => (this.db.prepare(sql).get(id, ...args) as { n: number }).n;
    return {
      devices: n('SELECT count(*) AS n FROM devices WHERE va_id = ?'),
      liveTokens: n('SELECT count(*) AS n FROM tokens WHERE va_id = ? AND revoked_at IS NULL AND expires_at > ?', now),
      entitlements: n('SELECT count(*) AS n FROM entitlements WHERE va_id = ?'),
    };
  }
  deleteDeadTokens(id: string): void {
    this.db.prepare('DELETE FROM tokens WHERE va_id = ?').run(id);
  }
  deviceCounts(): Map<string, number> {
    const rows = this.db
      .prepare("SELECT va_id, count(*) AS n FROM devices WHERE status != 'deregistered' GROUP BY va_id")
      .all() as { va_id: string; n: number }[];
    return new Map(rows.map((r) => [r.va_id, r.n]));
  }
}
