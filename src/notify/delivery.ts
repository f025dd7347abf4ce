import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { nextAttemptAt } from './backoff.js';
import { emailConfigured, sendEmail } from './email.js';
import type { NotifyMetrics } from './metrics.js';
import type { NotificationRow, Outbox } from './outbox.js';
import { payload, summary } from './render.js';
import type { SinkStore } from './sinks.js';
import type { SubscriptionStore } from './subscriptions.js';
import { sendSyslog, syslogMessage } from './syslog.js';
import { postWebhook } from './webhook.js';
import { readSecretFile } from '../shared/secret-file.js';

type NotifyConfig = Config['notifications'];

/**
 * Delivers the outbox, apart from ingestion: a timer (and a nudge when a notification is
 * written) claims what is due in one short transaction, sends each with async I/O bounded by
 * the timeout, and records each outcome in a short transaction of its own. Nothing here runs in
 * a device request's path; a sink that hangs holds one delivery slot until its timeout, no more.
 */
export class DeliveryLoop {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight = new Set<Promise<void>>();
  private ticking = false;
  private again = false;

  constructor(
    private c: NotifyConfig,
    private clock: Clock,
    private outbox: Outbox,
    private sinks: SinkStore,
    private subscriptions: SubscriptionStore,
    private metrics: NotifyMetrics,
    private logger: Logger,
    private collectorId: string,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.outbox.releaseClaims();
    this.schedule(0);
  }

  /** Stops claiming; waits for the deliveries in flight (each bounded by the timeout). */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inFlight]);
  }

  /** Something was written: look now rather than at the next poll. */
  nudge(): void {
    if (this.running) this.schedule(0);
  }

  /** Settles when nothing is in flight and nothing is due (tests and stop). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    if (!this.running) return;
    if (this.ticking) return void (this.again = true);
    this.ticking = true;
    try {
      const room = this.c.concurrency - this.inFlight.size;
      const rows = room > 0 ? this.outbox.claim(room) : [];
      for (const r of rows) {
        const p: Promise<void> = this.deliver(r).finally(() => {
          this.inFlight.delete(p);
          this.nudge();
        });
        this.inFlight.add(p);
      }
    } catch (e) {
      this.logger.error('notifications: the outbox could not be read', { error: (e as Error).message });
    } finally {
      this.ticking = false;
    }
    const pollMs = this.c.pollSeconds * 1000;
    const due = this.again ? 0 : this.nextDueIn(pollMs);
    this.again = false;
    if (this.running) this.schedule(due);
  }

  private nextDueIn(pollMs: number): number {
    try {
      const next = this.outbox.nextDue();
      return next === null ? pollMs : Math.max(0, Math.min(pollMs, next - this.clock.now()));
    } catch {
      return pollMs;
    }
  }

  private async deliver(n: NotificationRow): Promise<void> {
    try {
      await this.send(n);
    } catch (e) {
      const error = (e as Error).message || String(e);
      const next = nextAttemptAt(this.c.retrySeconds, n.attempts + 1, this.clock.now(), n.created_at, this.c.giveUpHours * 3_600_000);
      this.record(() => this.outbox.attemptFailed(n.id, error, next));
      if (next === null) {
        this.metrics.failed(n.channel);
        this.logger.warn('notification failed for good', { id: n.id, channel: n.channel, target: n.target, attempts: n.attempts + 1, error });
      } else {
        this.logger.info('notification delivery failed; it will be tried again', { id: n.id, channel: n.channel, target: n.target, retryAt: new Date(next).toISOString(), error });
      }
      return;
    }
    this.record(() => this.outbox.sent(n.id));
    this.metrics.sent(n.channel);
  }

  /** The store may be closing under a stop: an outcome not recorded is delivered again later, which receivers tolerate (the delivery id). */
  private record(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.logger.warn('notifications: an outcome could not be recorded', { error: (e as Error).message });
    }
  }

  private async send(n: NotificationRow): Promise<void> {
    const timeoutMs = this.c.timeoutSeconds * 1000;
    const now = this.clock.now();
    if (n.channel === 'email') {
      if (!emailConfigured(this.c.email)) throw new Error('no SMTP relay is configured (notifications.email.host)');
      const sub = this.subscriptions.get(n.target);
      if (!sub) throw new Error(`user ${n.target} has no subscription any more`);
      const subject = n.event === 'digest' ? `[Outpost] Daily digest ${n.subject}` : `[Outpost] ${summary(n).slice(0, 180)}`;
      const text = n.event === 'digest' ? n.message : `${summary(n)}\n\nDetails: ${n.details_json}\n${n.event === 'notice' ? '' : `Alert id: ${n.alert_id}\n`}`;
      return sendEmail(this.c.email, { to: sub.email, subject, text }, timeoutMs);
    }
    const sink = this.sinks.get(n.target);
    if (!sink) throw new Error('the sink was removed');
    if (n.channel === 'syslog') {
      const msg = syslogMessage(n, { facility: sink.syslog!.facility, hostname: this.c.syslogHostname || hostname(), now, procId: process.pid });
      return sendSyslog(sink.syslog!, msg, timeoutMs);
    }
    const secret = readSecretFile(sink.webhook!.hmacKeyFile, 'webhook secret file');
    return postWebhook(sink.webhook!.url, JSON.stringify(payload(n, this.collectorId, now)), secret, { now, timeoutMs, deliveryId: n.id });
  }
}
