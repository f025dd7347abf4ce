import { Counter, Gauge, type Registry } from 'prom-client';
import type { Channel } from './filter.js';
import type { Outbox } from './outbox.js';

/** outpost_notifications_*: counters moved by the delivery loop, the pending gauge read from the outbox at scrape time. */
export class NotifyMetrics {
  private readonly sentTotal;
  private readonly failedTotal;
  constructor(registry: Registry, outbox: Outbox) {
    const r = [registry];
    this.sentTotal = new Counter({ name: 'outpost_notifications_sent_total', help: 'Notifications delivered, by channel', labelNames: ['channel'], registers: r });
    this.failedTotal = new Counter({ name: 'outpost_notifications_failed_total', help: 'Notifications given up on after the retry schedule, by channel', labelNames: ['channel'], registers: r });
    new Gauge({
      name: 'outpost_notifications_pending', help: 'Notifications waiting for delivery (or a retry), by channel', labelNames: ['channel'], registers: r,
      collect() {
        this.reset();
        for (const c of ['email', 'syslog', 'webhook'] as const) this.set({ channel: c }, 0);
        for (const { channel, n } of outbox.pendingCounts()) this.set({ channel }, n);
      },
    });
  }
  sent(channel: Channel): void {
    this.sentTotal.inc({ channel });
  }
  failed(channel: Channel): void {
    this.failedTotal.inc({ channel });
  }
}
