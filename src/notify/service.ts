import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Registry } from 'prom-client';
import type { AlertService } from '../alerts/service.js';
import { DeliveryLoop } from './delivery.js';
import { writeDigests } from './digest.js';
import { smtpPassword, emailConfigured } from './email.js';
import { NotifyMetrics } from './metrics.js';
import { Outbox } from './outbox.js';
import { SinkStore } from './sinks.js';
import { SubscriptionStore } from './subscriptions.js';
import { readersOf, type MayRead } from './readers.js';

/** Delivered and failed notifications are kept this long, for the status and for a look back. */
const KEEP_MS = 30 * 86_400_000;

/** Notifications of alerts: the outbox the alerts write into, the sinks and subscriptions, and the delivery loop. */
export class NotifyService {
  readonly sinks: SinkStore;
  readonly subscriptions: SubscriptionStore;
  readonly outbox: Outbox;
  readonly delivery: DeliveryLoop;
  private readonly mayRead: MayRead;

  constructor(private db: Db, private clock: Clock, alerts: AlertService, registry: Registry, logger: Logger, private config: Config, collectorId: string) {
    const c = config.notifications;
    this.sinks = new SinkStore(db, clock);
    this.subscriptions = new SubscriptionStore(db, clock);
    this.mayRead = readersOf(db);
    this.outbox = new Outbox(db, clock, this.sinks, this.subscriptions, c.coalesceMinutes * 60_000, this.mayRead);
    this.delivery = new DeliveryLoop(c, clock, this.outbox, this.sinks, this.subscriptions, new NotifyMetrics(registry, this.outbox), logger, collectorId);
    alerts.observe((change) => {
      // Runs synchronously inside the alert's transaction; the nudge waits for the commit (a macrotask).
      if (this.outbox.enqueue(change) > 0) setImmediate(() => this.delivery.nudge());
    });
  }

  /** Refuses an SMTP password file others may read before anything starts, as the keys are refused. */
  checkSecrets(): void {
    if (emailConfigured(this.config.notifications.email)) smtpPassword(this.config.notifications.email);
  }

  start(): void {
    this.delivery.start();
  }

  stop(): Promise<void> {
    return this.delivery.stop();
  }

  /** Notifications were written outside an alert (a notice): deliver now rather than at the next poll. */
  nudge(): void {
    this.delivery.nudge();
  }

  /** The daily job: digests written, old delivered notifications pruned. */
  daily(): number {
    const now = this.clock.now();
    const n = writeDigests(this.db, this.outbox, this.subscriptions, this.mayRead, now, this.config.time.zone);
    this.outbox.prune(now - KEEP_MS);
    if (n) this.delivery.nudge();
    return n;
  }

  status() {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const s = this.outbox.status();
    return Object.fromEntries(
      Object.entries(s).map(([ch, v]) => [ch, { pending: v.pending, failed: v.failed, lastSuccessAt: iso(v.lastSuccessAt), lastError: v.lastError && { at: iso(v.lastError.at), message: v.lastError.message } }]),
    );
  }
}
