import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { LicenseService } from '../licenses/service.js';
import type { UsageKey } from '../licenses/ledger.js';
import { newId } from '../shared/ids.js';
import { notFound } from '../shared/errors.js';
import type { CssmClient } from './client.js';
import type { ResolvedAccount } from './accounts.js';
import { CloudTransfers } from './transfers.js';

/** One license of one CSSM virtual account, as the licenses call gives it. */
export interface Position {
  cssmVa: string;
  license: string;
  tag: string | null;
  quantity: number;
  inUse: number;
  available: number | null;
  status: string | null;
  lines: { kind: 'perpetual' | 'subscription' | 'term'; quantity: number; startsAt: number; endsAt: number | null }[];
}

export interface PositionsOutcome {
  virtualAccounts: number;
  positions: number;
  /** Positions with no entitlement tag (neither in the answer nor in cisco.cloud.licenseTags): shown, not counted. */
  untagged: number;
}

/** Licenses asked for in one call; the API pages its answer. */
export const POSITIONS_PAGE = 50;
const MAX_PAGES = 1000;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim() : null);
const date = (v: unknown): number | null => {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isNaN(t) ? null : t;
};
const kindOf = (t: string | null, ends: number | null): Position['lines'][number]['kind'] =>
  t && /perpetual/i.test(t) ? 'perpetual' : t && /subscription/i.test(t) ? 'subscription' : t && /term/i.test(t) ? 'term' : ends === null ? 'perpetual' : 'term';

/**
 * One license entry of the answer, read leniently (unknown fields ignored). The tag comes from
 * the answer where it carries one, else from cisco.cloud.licenseTags by the license's name.
 */
export function parsePosition(l: Record<string, unknown>, tags: Record<string, string>, readAt: number): Position | null {
  const license = str(l.license ?? l.licenseName ?? l.name);
  const cssmVa = str(l.virtualAccount ?? l.virtual_account);
  if (!license || !cssmVa) return null;
  const quantity = num(l.quantity) ?? 0;
  const details = Array.isArray(l.licenseDetails) ? (l.licenseDetails as Record<string, unknown>[]) : [];
  const lines = details.length
    ? details.map((d) => {
        const endsAt = date(d.endDate ?? d.expiryDate);
        return { kind: kindOf(str(d.licenseType ?? d.type), endsAt), quantity: Math.max(0, num(d.quantity) ?? 0), startsAt: date(d.startDate) ?? 0, endsAt };
      })
    : [{ kind: kindOf(str(l.licenseType), null), quantity: Math.max(0, quantity), startsAt: 0, endsAt: null }];
  void readAt;
  return {
    cssmVa, license, tag: str(l.tag ?? l.licenseTag ?? l.entitlementTag ?? l.softwareTagId) ?? tags[license] ?? null,
    quantity, inUse: num(l.inUse ?? l.in_use) ?? 0, available: num(l.available), status: str(l.status), lines,
  };
}

/**
 * Positions down: each sync reads the licenses of every mapped CSSM virtual account and makes
 * them the mapped VA's entitlements, so compliance shows the account's real quantities. Every
 * position is kept to be shown beside Outpost's own count, tagged or not; only tagged ones
 * become entitlement lines. A read from Cisco starts the VA's "cisco" lineage: it replaces
 * whatever an Outpost upstream gave, whatever its version.
 */
export class CloudPositions {
  constructor(
    private db: Db,
    private clock: Clock,
    private licenses: LicenseService,
    private events: EventService,
    private licenseTags: Record<string, string>,
  ) {}

  /** The CSSM license that holds a tag in a VA: as the last read named it, else as mapped by name. */
  private licenseOf = (vaId: string, tag: string): string | null =>
    (this.db.prepare('SELECT license FROM cssm_positions WHERE va_id = ? AND tag = ? ORDER BY license LIMIT 1').pluck().get(vaId, tag) as string | undefined) ??
    this.tags().find((t) => t.tag === tag)?.license ?? null;

  async read(client: CssmClient, resolved: ResolvedAccount): Promise<PositionsOutcome> {
    // Transfers go before the read, so that the read can show (and confirm) them.
    const transfers = new CloudTransfers(this.db, this.clock, this.licenses);
    await transfers.send(client, resolved, this.licenseOf, (cssmVa) => this.fetch(client, resolved, [cssmVa]));
    const mapped = resolved.mappings.filter((m) => m.cssm);
    if (!mapped.length) return { virtualAccounts: 0, positions: 0, untagged: 0 };
    const now = this.clock.now();
    const all = await this.fetch(client, resolved, mapped.map((m) => m.cssm!.name));
    const touched: UsageKey[] = [];
    this.db.transaction(() => {
      // Before the lines are replaced: a transfer this read shows is confirmed, not laid over it.
      transfers.confirm(all, new Map(mapped.map((m) => [m.vaId, m.cssm!.name])), this.licenseOf, touched);
      for (const m of mapped) {
        const mine = all.filter((p) => p.cssmVa === m.cssm!.name);
        this.db.prepare('DELETE FROM cssm_positions WHERE va_id = ?').run(m.vaId);
        const keep = this.db.prepare(
          'INSERT OR REPLACE INTO cssm_positions (va_id, cssm_va, license, tag, quantity, in_use, available, status, read_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        for (const p of mine) keep.run(m.vaId, p.cssmVa, p.license, p.tag, p.quantity, p.inUse, p.available, p.status, now);
        const before = this.licenses.entitlements.byVa(m.vaId).map((l) => l.tag);
        this.db.prepare('DELETE FROM entitlements WHERE va_id = ?').run(m.vaId);
        for (const p of mine) {
          if (!p.tag) continue;
          for (const l of p.lines) {
            this.licenses.entitlements.insert({
              id: newId('ent', now), va_id: m.vaId, tag: p.tag, display_name: p.license, kind: l.kind, quantity: l.quantity, starts_at: l.startsAt, ends_at: l.endsAt, created_at: now,
            });
          }
        }
        this.db
          .prepare(
            `INSERT INTO entitlement_versions (va_id, version, lineage) VALUES (?, 1, 'cisco')
             ON CONFLICT (va_id) DO UPDATE SET version = CASE WHEN lineage = 'cisco' THEN version + 1 ELSE 1 END, lineage = 'cisco'`,
          )
          .run(m.vaId);
        // Positions read before Cisco applied a transfer must not erase it.
        this.licenses.transfers.overlay(m.vaId, touched);
        for (const tag of new Set([...before, ...mine.flatMap((p) => (p.tag ? [p.tag] : []))])) touched.push({ vaId: m.vaId, tag });
        this.events.append('entitlements.snapshot_applied', 'cisco', m.vaId, m.vaId, { from: 'cssm', cssmVa: m.cssm!.name, positions: mine.length });
      }
      this.licenses.refreshAlerts(touched);
    })();
    return { virtualAccounts: mapped.length, positions: all.length, untagged: all.filter((p) => !p.tag).length };
  }

  /** The licenses of some CSSM virtual accounts as Cisco shows them now, every page. */
  private async fetch(client: CssmClient, resolved: ResolvedAccount, names: string[]): Promise<Position[]> {
    const now = this.clock.now();
    const tags = { ...this.licenseTags, ...Object.fromEntries(this.tags().map((t) => [t.license, t.tag])) };
    const all: Position[] = [];
    for (let page = 0, offset = 0; page < MAX_PAGES; page++) {
      const r = (await client.call('POST', `/v1/accounts/${encodeURIComponent(resolved.account.domain)}/licenses`, { virtualAccounts: names, limit: POSITIONS_PAGE, offset })) as Record<string, unknown>;
      const list = Array.isArray(r.licenses) ? (r.licenses as Record<string, unknown>[]) : [];
      for (const l of list) {
        const p = parsePosition(l, tags, now);
        if (p) all.push(p);
      }
      offset += list.length;
      const total = num(r.totalRecords ?? r.totalCount);
      if (!list.length || list.length < POSITIONS_PAGE || (total !== null && offset >= total)) break;
    }
    return all;
  }

  /** The license names operators have mapped to tags (over cisco.cloud.licenseTags), and the configured ones. */
  tags(): { license: string; tag: string; from: 'operator' | 'config' }[] {
    const set = this.db.prepare('SELECT license, tag FROM cssm_license_tags ORDER BY license').all() as { license: string; tag: string }[];
    const mine = new Set(set.map((t) => t.license));
    return [
      ...set.map((t) => ({ ...t, from: 'operator' as const })),
      ...Object.entries(this.licenseTags).filter(([l]) => !mine.has(l)).map(([license, tag]) => ({ license, tag, from: 'config' as const })),
    ].sort((a, b) => a.license.localeCompare(b.license));
  }

  /** Maps a license name to a tag (or removes the mapping, with tag null); applied at the next positions read. */
  setTag(license: string, tag: string | null, actor: string): { license: string; tag: string | null } {
    this.db.transaction(() => {
      if (tag === null) {
        if (!this.db.prepare('DELETE FROM cssm_license_tags WHERE license = ?').run(license).changes) throw notFound('license tag mapping', license);
      } else {
        this.db
          .prepare('INSERT INTO cssm_license_tags (license, tag, updated_at) VALUES (?, ?, ?) ON CONFLICT (license) DO UPDATE SET tag = excluded.tag, updated_at = excluded.updated_at')
          .run(license, tag, this.clock.now());
      }
      this.events.append('cisco.license_tag_set', actor, license, null, { license, tag });
    })();
    return { license, tag };
  }

  /** The positions last read, beside Outpost's own in-use count for the same VA and tag. */
  list(vaId?: string) {
    const rows = this.db
      .prepare(
        `SELECT p.*, v.name AS va_name, (SELECT in_use FROM va_usage u WHERE u.va_id = p.va_id AND u.tag = p.tag) AS local_in_use
         FROM cssm_positions p JOIN virtual_accounts v ON v.id = p.va_id WHERE ? IS NULL OR p.va_id = ? ORDER BY v.name, p.license`,
      )
      .all(vaId ?? null, vaId ?? null) as {
      va_id: string; va_name: string; cssm_va: string; license: string; tag: string | null; quantity: number; in_use: number; available: number | null;
      status: string | null; read_at: number; local_in_use: number | null;
    }[];
    return rows.map((r) => ({
      vaId: r.va_id, vaName: r.va_name, cssmVa: r.cssm_va, license: r.license, tag: r.tag, quantity: r.quantity, cssmInUse: r.in_use,
      localInUse: r.tag ? (r.local_in_use ?? 0) : null, difference: r.tag ? r.in_use - (r.local_in_use ?? 0) : null,
      available: r.available, status: r.status, readAt: toIso(r.read_at),
    }));
  }
}
