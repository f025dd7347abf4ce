import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { AlertRepository, type AlertRow, type Severity } from './repository.js';

export type AlertKind =
  | 'shortage'
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
  | 'bundle_rejected';

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
}

/**
 * Alerts are conditions, not messages: raising one that is open refreshes it, and it stays
 * open (with its first-seen time) until the condition is gone and it is cleared.
 */
export class AlertService {
  private repo: AlertRepository;
  constructor(
    db: Db,
    private clock: Clock,
  ) {
    this.repo = new AlertRepository(db);
  }

  raise(kind: AlertKind, a: AlertSpec): void {
    const now = this.clock.now();
    const details = JSON.stringify(a.details ?? {});
    const open = this.repo.findOpen(kind, a.subject);
    if (open) this.repo.touch(open.id, a.severity, a.message, details, now);
    else this.repo.insert(kind, a.subject, a.severity, a.message, details, now);
  }

  isOpen(kind: AlertKind, subject: string): boolean {
    return this.repo.findOpen(kind, subject) !== undefined;
  }

  clear(kind: AlertKind, subject: string): boolean {
    return this.repo.clear(kind, subject, this.clock.now());
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
    return this.repo.clearOthers(kind, keep, this.clock.now(), limit);
  }

  list(f: { open?: boolean | undefined; kind?: string | undefined; before?: number | undefined; limit: number }) {
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
  };
}
