import type { Db } from '../store/open.js';

/** A usage bundle posted to the upstream whose answer has not been applied yet. */
export interface InFlight {
  bundleId: string;
  sequence: number;
  file: string;
  reports: number;
  postedAt: number | null;
}

export interface SyncError {
  code: string;
  message: string;
  at: number;
}

/**
 * What the connected sync remembers across restarts, in the meta table: when it last tried
 * and succeeded, why it last failed, when it is next due, and the bundle in flight (re-sent,
 * never rebuilt, so that an answer the upstream already made is fetched rather than made again).
 */
export class SyncState {
  constructor(private db: Db) {}

  private get(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(`sync.${key}`) as { value: string } | undefined)?.value;
  }
  private set(key: string, value: string | null): void {
    if (value === null) this.db.prepare('DELETE FROM meta WHERE key = ?').run(`sync.${key}`);
    else this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(`sync.${key}`, value);
  }
  private num(key: string): number | null {
    const v = this.get(key);
    return v === undefined ? null : Number(v);
  }
  private json<T>(key: string): T | null {
    const v = this.get(key);
    return v === undefined ? null : (JSON.parse(v) as T);
  }

  get lastAttemptAt(): number | null {
    return this.num('last_attempt_at');
  }
  set lastAttemptAt(v: number | null) {
    this.set('last_attempt_at', v === null ? null : String(v));
  }
  get lastSuccessAt(): number | null {
    return this.num('last_success_at');
  }
  set lastSuccessAt(v: number | null) {
    this.set('last_success_at', v === null ? null : String(v));
  }
  get lastError(): SyncError | null {
    return this.json<SyncError>('last_error');
  }
  set lastError(v: SyncError | null) {
    this.set('last_error', v === null ? null : JSON.stringify(v));
  }
  get nextDue(): number | null {
    return this.num('next_due');
  }
  set nextDue(v: number | null) {
    this.set('next_due', v === null ? null : String(v));
  }
  /** Since when every attempt has failed to reach the upstream (null: it answered last time). */
  get unreachableSince(): number | null {
    return this.num('unreachable_since');
  }
  set unreachableSince(v: number | null) {
    this.set('unreachable_since', v === null ? null : String(v));
  }
  /** When a part last carried every device (once a day; other parts carry the devices they report). */
  get fullDevicesAt(): number | null {
    return this.num('full_devices_at');
  }
  set fullDevicesAt(v: number | null) {
    this.set('full_devices_at', v === null ? null : String(v));
  }
  /** When connected mode was first seen: a sync is overdue from here until the first succeeds. */
  get connectedSince(): number | null {
    return this.num('connected_since');
  }
  set connectedSince(v: number | null) {
    this.set('connected_since', v === null ? null : String(v));
  }
  /** Our latest key rotation statement the upstream has applied (bundle id). */
  get rotationDelivered(): string | null {
    return this.get('rotation_delivered') ?? null;
  }
  set rotationDelivered(v: string | null) {
    this.set('rotation_delivered', v);
  }
  get inFlight(): InFlight | null {
    return this.json<InFlight>('in_flight');
  }
  set inFlight(v: InFlight | null) {
    this.set('in_flight', v === null ? null : JSON.stringify(v));
  }
}
