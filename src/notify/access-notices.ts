import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { SinkStore } from './sinks.js';
import { SubscriptionStore } from './subscriptions.js';

/** The kind a sink's filter lists to be told of access requests (a sink asking for every kind is not: these are no alerts). */
export const ACCESS_KIND = 'access_request';

/** A step of an access request that someone is told of. */
export interface AccessNotice {
  step: 'requested' | 'approved' | 'denied' | 'withdrawn';
  requestId: string;
  /** The requester. */
  userId: string;
  user: string;
  vaId: string;
  va: string;
  /** The role asked for. */
  role: string;
  justification: string;
  decidedBy?: string;
  grantedRole?: string;
  reason?: string;
}

function message(n: AccessNotice): string {
  if (n.step === 'requested') return `Access request: ${n.user} asks for ${n.role} on ${n.va}: ${n.justification}`;
  if (n.step === 'withdrawn') return `Access request withdrawn: ${n.user} no longer asks for ${n.role} on ${n.va}`;
  if (n.step === 'approved') return `Access request approved: ${n.user} now holds ${n.grantedRole} on ${n.va} (asked ${n.role}), granted by ${n.decidedBy}`;
  return `Access request denied: ${n.user}'s request for ${n.role} on ${n.va}, denied by ${n.decidedBy}: ${n.reason}`;
}

/**
 * Access requests told through the notification outbox, as notices (not alerts: nothing about
 * them is out of compliance, and nothing resolves them). A request waiting is told to the users
 * who may settle it and have an e-mail subscription; its outcome to its requester, when
 * subscribed; and each step to the sinks whose filter lists the kind access_request. Written
 * in the transaction of the step, so a notice is never lost to a crash and one waiting survives
 * a restart; the delivery loop sends them with the rest.
 */
export class AccessNotices {
  private sinks: SinkStore;
  private subscriptions: SubscriptionStore;
  private insert;
  constructor(db: Db, private clock: Clock) {
    this.sinks = new SinkStore(db, clock);
    this.subscriptions = new SubscriptionStore(db, clock);
    this.insert = db.prepare(
      `INSERT INTO notifications (channel, target, event, alert_id, kind, subject, severity, va_id, message, details_json, state, next_at, created_at)
       VALUES (?, ?, 'notice', NULL, ?, ?, 'info', ?, ?, ?, 'pending', ?, ?)`,
    );
  }

  /**
   * Call inside the step's transaction. `mayApprove` says, from the store as it is now, whether
   * a user may settle this request (the rule the approve route applies). Subscribers are active
   * users only. Returns how many notifications were written.
   */
  write(n: AccessNotice, mayApprove: (userId: string) => boolean): number {
    const now = this.clock.now();
    const text = message(n);
    const details = JSON.stringify(n);
    const put = (channel: string, target: string) => this.insert.run(channel, target, ACCESS_KIND, n.requestId, n.vaId, text, details, now, now);
    let written = 0;
    for (const s of this.sinks.all()) {
      // A notice has no severity of its own: the kinds and the VAs of the filter decide.
      if (!s.enabled || !s.filter.kinds?.includes(ACCESS_KIND) || (s.filter.vaIds && !s.filter.vaIds.includes(n.vaId))) continue;
      put(s.kind, s.id), written++;
    }
    for (const s of this.subscriptions.all()) {
      // Those told a request waits are told it no longer does; the requester hears of a decision.
      const told = n.step === 'requested' || n.step === 'withdrawn'
        ? s.userId !== n.userId && (s.filter.vaIds === null || s.filter.vaIds.includes(n.vaId)) && mayApprove(s.userId)
        : s.userId === n.userId;
      if (told) put('email', s.userId), written++;
    }
    return written;
  }
}
