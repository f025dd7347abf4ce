import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { conflict, notFound } from '../shared/errors.js';
import { EventService } from '../events/service.js';
import { AlertRepository, type AlertRow, type ClearedRow, type ListFilter, type Severity } from './repository.js';

export type AlertKind =
  | 'shortage'
  | 'shortage_forecast'
  | 'device_silent'
  | 'device_stale'
  | 'token_expiring'
  | 'entitlement_expiring'
  | 'rekey_pending'
  | 'clock_backwards'
  | 'clock_forward'
  | 'future_period'
  | 'export_ready'
  | 'report_rejected'
  | 'ack_overdue'
  | 'bundle_rejected'
  | 'sync_overdue'
  | 'upstream_unreachable'
  | 'upstream_clock_skew'
  | 'sync_reply_refused'
  | 'cloud_unmapped_va'
  | 'transfer_refused';

export interface AlertSpec {
  subject: string;
  severity: Severity;
  message: string;
  details?: Record<string, unknown>;
}

export interface Alert {
  id: number;
  kind: string;
  subject: string;
  severity: Severity;
  message: string;
  details: Record<string, unknown>;
  firstSeenAt: string;
  lastSeenAt: string;
  clearedAt: string | null;
  /** Set while an operator has acknowledged it, until it clears or gets worse. */
  acknowledged: { at: string; by: string; reason: string } | null;
}

/** Why an acknowledgement ended: an event of type alert.unacknowledged carries it. */
export type UnackReason = 'cleared' | 'severity_rose' | 'shortage_grew';

/** An alert opened (or opened again after it cleared) or resolved: what the notification outbox is told. */
export interface AlertChange {
  event: 'opened' | 'resolved';
  id: number;
  kind: string;
  subject: string;
  severity: Severity;
  message: string;
  details: Record<string, unknown>;
  vaId: string | null;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/**
 * Alerts are conditions, not messages: raising one that is open refreshes it, and it stays
 * open (with its first-seen time) until the condition is gone and it is cleared.
 */
export class AlertService {
  private repo: AlertRepository;
  constructor(
    private db: Db,
    private clock: Clock,
    // The trail reads its head from the store on each append, so an instance of its own writes
    // to the one chain; the ack and its end are recorded in the transaction of the change.
    private events = new EventService(db, clock),
  ) {
    this.repo = new AlertRepository(db);
  }

  private observers: ((c: AlertChange) => void)[] = [];

  /**
   * Tells `fn` of each alert opened or resolved, inside the transaction that changes it: the
   * notification outbox writes its rows there, so the change and its notifications commit together.
   */
  observe(fn: (c: AlertChange) => void): void {
    this.observers.push(fn);
  }

  private told(c: AlertChange): void {
    for (const fn of this.observers) fn(c);
  }

  raise(kind: AlertKind, a: AlertSpec): void {
    // A transaction of its own (a savepoint inside a caller's): the alert and its notifications commit together.
    this.db.transaction(() => this.raiseNow(kind, a))();
  }

  private raiseNow(kind: AlertKind, a: AlertSpec): void {
    const now = this.clock.now();
    const details = JSON.stringify(a.details ?? {});
    const open = this.repo.findOpen(kind, a.subject);
    if (!open) {
      const id = this.repo.insert(kind, a.subject, a.severity, a.message, details, now);
      const d = a.details ?? {};
      this.told({ event: 'opened', id, kind, subject: a.subject, severity: a.severity, message: a.message, details: d, vaId: vaOf({ kind, subject: a.subject, details }) });
      return;
    }
    this.repo.touch(open.id, a.severity, a.message, details, now);
    if (open.acked_at === null) return;
    // An acknowledgement covers the alert as it stood; worse than that, the operator must look again.
    const level = ackLevel(kind, a.details ?? {});
    const why: UnackReason | null =
      RANK[a.severity] > RANK[open.acked_severity ?? a.severity]
        ? 'severity_rose'
        : level !== null && open.acked_level !== null && level > open.acked_level
          ? 'shortage_grew'
          : null;
    if (!why) return;
    this.repo.unacknowledge(open.id);
    this.events.append('alert.unacknowledged', 'system', String(open.id), vaOf(open), {
      kind, subject: open.subject, reason: why, acknowledgedBy: open.acked_by,
      ...(why === 'severity_rose' ? { from: open.acked_severity, to: a.severity } : { from: open.acked_level, to: level }),
    });
  }

  isOpen(kind: AlertKind, subject: string): boolean {
    return this.repo.findOpen(kind, subject) !== undefined;
  }

  clear(kind: AlertKind, subject: string): boolean {
    return this.db.transaction(() => {
      const rows = this.repo.clear(kind, subject, this.clock.now());
      this.endAcks(rows);
      return rows.length > 0;
    })();
  }

  /** Records that an operator has seen an open alert and why it may wait; a new reason replaces the old. */
  acknowledge(id: number, actor: string, reason: string): Alert {
    return this.db.transaction(() => this.acknowledgeNow(id, actor, reason))();
  }

  private acknowledgeNow(id: number, actor: string, reason: string): Alert {
    const row = this.repo.byId(id);
    if (!row) throw notFound('alert', String(id));
    if (row.cleared_at !== null) {
      throw conflict('alert_cleared', `alert ${id} cleared on ${toIso(row.cleared_at)}: there is nothing to acknowledge`, { clearedAt: toIso(row.cleared_at) });
    }
    this.repo.acknowledge(id, this.clock.now(), actor, reason, row.severity, ackLevel(row.kind, JSON.parse(row.details) as Record<string, unknown>));
    this.events.append('alert.acknowledged', actor, String(id), vaOf(row), { kind: row.kind, subject: row.subject, severity: row.severity, reason });
    return toAlert(this.repo.byId(id)!);
  }

  private endAcks(rows: ClearedRow[]): void {
    for (const r of rows) {
      if (this.observers.length) {
        this.told({ event: 'resolved', id: r.id, kind: r.kind, subject: r.subject, severity: r.severity, message: r.message, details: JSON.parse(r.details) as Record<string, unknown>, vaId: vaOf(r) });
      }
      if (r.acked_at !== null) this.events.append('alert.unacknowledged', 'system', String(r.id), vaOf(r), { kind: r.kind, subject: r.subject, reason: 'cleared' });
    }
  }

  /** Makes the open alerts of one kind exactly the given set: raise what holds, clear the rest. */
  reconcile(kind: AlertKind, current: AlertSpec[]): void {
    const keep = new Set(current.map((a) => a.subject));
    for (const a of current) this.raise(kind, a);
    for (const subject of this.repo.openSubjects(kind)) if (!keep.has(subject)) this.clear(kind, subject);
  }

  /**
   * Clears up to `limit` open alerts of a kind whose subject is not kept, in one statement;
   * returns how many. A caller with many to clear repeats it, letting other work run between.
   */
  clearOthers(kind: AlertKind, keep: string[], limit: number): number {
    return this.db.transaction(() => {
      const rows = this.repo.clearOthers(kind, keep, this.clock.now(), limit);
      this.endAcks(rows);
      return rows.length;
    })();
  }

  /** Open alerts by kind and severity (about these VAs only, when given). */
  openCounts(vaIds?: string[]) {
    return this.repo.openCounts(vaIds);
  }

  list(f: ListFilter) {
    const rows = this.repo.list(f);
    const last = rows[rows.length - 1];
    return { items: rows.map(toAlert), nextCursor: rows.length === f.limit && last ? String(last.id) : null };
  }
}

function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    kind: r.kind,
    subject: r.subject,
    severity: r.severity,
    message: r.message,
    details: JSON.parse(r.details) as Record<string, unknown>,
    firstSeenAt: toIso(r.first_seen_at)!,
    lastSeenAt: toIso(r.last_seen_at)!,
    clearedAt: toIso(r.cleared_at),
    acknowledged: r.acked_at !== null ? { at: toIso(r.acked_at)!, by: r.acked_by ?? '', reason: r.ack_reason ?? '' } : null,
  };
}

/** How many licenses short a shortage is; null for other kinds, which only get worse by severity. */
function ackLevel(kind: string, details: Record<string, unknown>): number | null {
  if (kind !== 'shortage') return null;
  const inUse = typeof details.inUse === 'number' ? details.inUse : 0;
  const owned = typeof details.owned === 'number' ? details.owned : 0;
  return inUse - owned;
}

/** The VA an alert is about, for the event's VA column: named in its details, or its subject for per-VA alerts. */
function vaOf(r: Pick<AlertRow, 'kind' | 'subject' | 'details'>): string | null {
  const d = JSON.parse(r.details) as { vaId?: unknown };
  if (typeof d.vaId === 'string') return d.vaId;
  return r.kind === 'device_stale' || r.kind === 'device_silent' ? r.subject : null;
}
