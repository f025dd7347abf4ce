import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import type { AlertChange } from '../alerts/service.js';
import { matches, type Channel } from './filter.js';
import type { SinkStore } from './sinks.js';
import type { SubscriptionStore } from './subscriptions.js';
import type { MayRead } from './readers.js';

export interface NotificationRow {
  id: number;
  channel: Channel;
  target: string;
  event: 'opened' | 'resolved' | 'digest' | 'notice';
  alert_id: number | null;
  kind: string;
  subject: string;
  severity: 'info' | 'warning' | 'critical';
  va_id: string | null;
  message: string;
  details_json: string;
  count: number;
  state: 'pending' | 'sent' | 'failed';
  attempts: number;
  next_at: number;
  claimed_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
  sent_at: number | null;
  created_at: number;
}

/**
 * The notifications to deliver, one row per alert change and recipient, written in the alert's
 * own transaction. A repeat of the same change (kind, subject, event) to the same recipient
 * within the coalescing window is folded into the row still waiting, which then says how many
 * times; when the last one has gone already (or is on its way), the repeat waits in a new row
 * until the window from that one has passed, so that a flapping alert makes two notifications
 * per window at most, not one per flap.
 */
export class Outbox {
  private latest;
  private fold;
  private insert;
  constructor(private db: Db, private clock: Clock, private sinks: SinkStore, private subscriptions: SubscriptionStore, private windowMs: number, private mayRead: MayRead) {
    this.latest = db.prepare(
      `SELECT id, state, claimed_at, created_at FROM notifications
       WHERE channel = ? AND target = ? AND kind = ? AND subject = ? AND event = ? AND created_at >= ? ORDER BY id DESC LIMIT 1`,
    );
    this.fold = db.prepare('UPDATE notifications SET count = count + 1, alert_id = ?, severity = ?, message = ?, details_json = ?, va_id = ? WHERE id = ?');
    this.insert = db.prepare(
      `INSERT INTO notifications (channel, target, event, alert_id, kind, subject, severity, va_id, message, details_json, state, next_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
    );
  }

  /** Called inside the alert's transaction: the recipients are read there too. Returns how many rows it wrote or folded. */
  enqueue(c: AlertChange): number {
    const now = this.clock.now();
    let n = 0;
    for (const s of this.sinks.all()) {
      if (!s.enabled || (c.event === 'resolved' && !s.resolutions) || !matches(s.filter, c)) continue;
      this.write(s.kind, s.id, c, now), n++;
    }
    for (const s of this.subscriptions.all()) {
      if ((c.event === 'resolved' && !s.resolutions) || !matches({ ...s.filter, kinds: null }, c) || !this.mayRead(s.userId, c.vaId)) continue;
      this.write('email', s.userId, c, now), n++;
    }
    return n;
  }

  private write(channel: Channel, target: string, c: AlertChange, now: number): void {
    const details = JSON.stringify(c.details);
    const last = this.windowMs > 0
      ? (this.latest.get(channel, target, c.kind, c.subject, c.event, now - this.windowMs) as Pick<NotificationRow, 'id' | 'state' | 'claimed_at' | 'created_at'> | undefined)
      : undefined;
    if (last && last.state === 'pending' && last.claimed_at === null) {
      this.fold.run(c.id, c.severity, c.message, details, c.vaId, last.id);
      return;
    }
    const nextAt = last ? Math.max(now, last.created_at + this.windowMs) : now;
    this.insert.run(channel, target, c.event, c.id, c.kind, c.subject, c.severity, c.vaId, c.message, details, nextAt, now);
  }

  /** A day's digest for one subscriber; a second one for the same day is not written. */
  enqueueDigest(userId: string, day: string, severity: NotificationRow['severity'], message: string, details: unknown): boolean {
    const now = this.clock.now();
    return this.db
      .prepare(
        `INSERT OR IGNORE INTO notifications (channel, target, event, alert_id, kind, subject, severity, va_id, message, details_json, state, next_at, created_at)
         VALUES ('email', ?, 'digest', NULL, 'digest', ?, ?, NULL, ?, ?, 'pending', ?, ?)`,
      )
      .run(userId, day, severity, message, JSON.stringify(details), now, now).changes > 0;
  }

  /** No delivery is in flight when the collector starts: what a stop cut short is due again. */
  releaseClaims(): void {
    this.db.prepare('UPDATE notifications SET claimed_at = NULL WHERE claimed_at IS NOT NULL').run();
  }

  /** Takes up to `limit` due notifications for delivery, oldest first, in one short transaction. */
  claim(limit: number): NotificationRow[] {
    const now = this.clock.now();
    return this.db.transaction(() => {
      const rows = this.db
        .prepare("SELECT * FROM notifications WHERE state = 'pending' AND next_at <= ? AND claimed_at IS NULL ORDER BY next_at, id LIMIT ?")
        .all(now, limit) as NotificationRow[];
      const mark = this.db.prepare('UPDATE notifications SET claimed_at = ? WHERE id = ?');
      for (const r of rows) mark.run(now, r.id);
      return rows;
    })();
  }

  sent(id: number): void {
    const now = this.clock.now();
    this.db.prepare("UPDATE notifications SET state = 'sent', sent_at = ?, last_attempt_at = ?, attempts = attempts + 1, claimed_at = NULL WHERE id = ?").run(now, now, id);
  }

  /** A failed attempt: due again at `nextAt`, or failed for good when that is null. */
  attemptFailed(id: number, error: string, nextAt: number | null): void {
    const now = this.clock.now();
    this.db
      .prepare(
        `UPDATE notifications SET attempts = attempts + 1, last_error = ?, last_error_at = ?, last_attempt_at = ?, claimed_at = NULL,
           state = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END, next_at = coalesce(?, next_at) WHERE id = ?`,
      )
      .run(error.slice(0, 1000), now, now, nextAt, nextAt, id);
  }

  /** The soonest a pending notification falls due, if any. */
  nextDue(): number | null {
    return (this.db.prepare("SELECT min(next_at) FROM notifications WHERE state = 'pending' AND claimed_at IS NULL").pluck().get() as number | null) ?? null;
  }

  /** Per channel: pending, failed, the last success and the last error. */
  status(): Record<Channel, { pending: number; failed: number; lastSuccessAt: number | null; lastError: { at: number; message: string } | null }> {
    const out = {} as ReturnType<Outbox['status']>;
    for (const channel of ['email', 'syslog', 'webhook'] as const) {
      const c = this.db
        .prepare(
          `SELECT (SELECT count(*) FROM notifications WHERE state = 'pending' AND channel = @ch) AS pending,
                  (SELECT count(*) FROM notifications WHERE state = 'failed' AND channel = @ch) AS failed,
                  (SELECT max(sent_at) FROM notifications WHERE channel = @ch AND state = 'sent') AS lastSuccessAt`,
        )
        .get({ ch: channel }) as { pending: number; failed: number; lastSuccessAt: number | null };
      const e = this.db
        .prepare('SELECT last_error AS message, last_error_at AS at FROM notifications WHERE channel = ? AND last_error_at IS NOT NULL ORDER BY last_error_at DESC LIMIT 1')
        .get(channel) as { message: string; at: number } | undefined;
      out[channel] = { ...c, lastError: e ?? null };
    }
    return out;
  }

  pendingCounts(): { channel: Channel; n: number }[] {
    return this.db.prepare("SELECT channel, count(*) AS n FROM notifications WHERE state = 'pending' GROUP BY channel").all() as { channel: Channel; n: number }[];
  }

  /** Delivered and failed notifications older than this go: the outbox is not an archive (the alerts are). */
  prune(before: number): number {
    return this.db.prepare("DELETE FROM notifications WHERE state IN ('sent', 'failed') AND created_at < ?").run(before).changes;
  }
}
