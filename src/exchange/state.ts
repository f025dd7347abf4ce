import { fingerprint } from '../shared/ed25519.js';
import type { Db } from '../store/open.js';
import type { EpochStatement } from '../backup/epoch.js';

export interface BundleRow {
  id: string;
  direction: 'out' | 'in';
  kind: string;
  sequence: number;
  hash: string;
  file: string;
  period: string | null;
  records: number;
  created_at: number;
  answers: string | null;
  forced: number;
}

export interface UpstreamKeyRow {
  key_id: string;
  public_key: string;
  status: 'active' | 'retired';
  added_at: number;
  retired_at: number | null;
  grace_until: number | null;
  until_sequence: number | null;
}

/**
 * The collector's side of the exchange: the bundles it wrote and applied, its high-water
 * marks, and the upstream keys it pinned. Counters live in the meta table.
 */
export class ExchangeState {
  constructor(private db: Db) {}

  private meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }
  private setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
  private num(key: string): number {
    return Number(this.meta(key) ?? 0);
  }

  /** The next sequence number for a bundle this collector writes (strictly increasing, gaps allowed). */
  nextOutSequence(): number {
    const n = this.num('exchange.out_seq') + 1;
    this.setMeta('exchange.out_seq', String(n));
    return n;
  }
  /** Highest sequence of a response applied (the upstream's high-water mark). */
  get responseHwm(): number {
    return this.num('exchange.response_hwm');
  }
  set responseHwm(n: number) {
    this.setMeta('exchange.response_hwm', String(n));
  }
  /** Highest sequence of a usage bundle answered by an applied response. */
  get answeredHwm(): number {
    return this.num('exchange.answered_hwm');
  }
  set answeredHwm(n: number) {
    this.setMeta('exchange.answered_hwm', String(n));
  }
  /** Hash of the last usage bundle the upstream answered, carried in the next usage bundle. */
  get lastAnsweredHash(): string | null {
    return this.meta('exchange.last_answered_hash') ?? null;
  }
  set lastAnsweredHash(h: string | null) {
    if (h) this.setMeta('exchange.last_answered_hash', h);
  }
  get upstreamAccountId(): string | null {
    return this.meta('exchange.upstream_account_id') ?? null;
  }
  set upstreamAccountId(id: string | null) {
    if (id) this.setMeta('exchange.upstream_account_id', id);
  }
  get nextExportDue(): number | null {
    const v = this.meta('exchange.next_export_due');
    return v ? Number(v) : null;
  }
  set nextExportDue(ms: number | null) {
    if (ms !== null) this.setMeta('exchange.next_export_due', String(ms));
  }
  /** The monthly export's schedule key (yyyy-mm) that ran last, so a missed one runs once. */
  get lastScheduledPeriod(): string | null {
    return this.meta('exchange.last_scheduled_period') ?? null;
  }
  set lastScheduledPeriod(p: string | null) {
    if (p) this.setMeta('exchange.last_scheduled_period', p);
  }

  /**
   * The statement of the latest restore (backup/epoch.ts), carried by every usage bundle after
   * it; null for a collector never restored.
   */
  get epochStatement(): EpochStatement | null {
    const v = this.meta('exchange.epoch_statement');
    return v ? (JSON.parse(v) as EpochStatement) : null;
  }

  recordBundle(r: BundleRow): void {
    this.db
      .prepare(
        `INSERT INTO bundles (id, direction, kind, sequence, hash, file, period, records, created_at, answers, forced)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.id, r.direction, r.kind, r.sequence, r.hash, r.file, r.period, r.records, r.created_at, r.answers, r.forced);
  }
  bundleByHash(hash: string): BundleRow | undefined {
    return this.db.prepare('SELECT * FROM bundles WHERE hash = ?').get(hash) as BundleRow | undefined;
  }
  bundle(id: string): BundleRow | undefined {
    return this.db.prepare('SELECT * FROM bundles WHERE id = ?').get(id) as BundleRow | undefined;
  }
  bundles(limit = 100): BundleRow[] {
    return this.db.prepare('SELECT * FROM bundles ORDER BY created_at DESC, sequence DESC LIMIT ?').all(limit) as BundleRow[];
  }

  /** The first response applied that answers a usage bundle (the bundles are few: hundreds a decade). */
  answeredBy(usageBundleId: string): string | undefined {
    return this.db.prepare("SELECT id FROM bundles WHERE direction = 'in' AND answers = ? ORDER BY created_at LIMIT 1").pluck().get(usageBundleId) as string | undefined;
  }

  upstreamKeys(): UpstreamKeyRow[] {
    return this.db.prepare('SELECT * FROM upstream_keys ORDER BY added_at').all() as UpstreamKeyRow[];
  }
  upstreamKey(keyId: string): UpstreamKeyRow | undefined {
    return this.db.prepare('SELECT * FROM upstream_keys WHERE key_id = ?').get(keyId) as UpstreamKeyRow | undefined;
  }
  pinUpstreamKey(publicKey: Buffer, at: number): string {
    const keyId = fingerprint(publicKey);
    this.db
      .prepare(
        `INSERT INTO upstream_keys (key_id, public_key, status, added_at) VALUES (?, ?, 'active', ?)
         ON CONFLICT (key_id) DO UPDATE SET status = 'active', retired_at = NULL, grace_until = NULL`,
      )
      .run(keyId, publicKey.toString('base64'), at);
    return keyId;
  }
  retireUpstreamKey(keyId: string, at: number, graceUntil: number | null, untilSequence: number | null): void {
    this.db
      .prepare("UPDATE upstream_keys SET status = 'retired', retired_at = ?, grace_until = ?, until_sequence = ? WHERE key_id = ?")
      .run(at, graceUntil, untilSequence, keyId);
  }
}
