import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import type { Services } from '../services.js';
import type { Job } from '../schedules.js';

export type LogFailure = (job: string) => (e: unknown) => void;

export const logJobFailure = (logger: Logger): LogFailure => (job) => (e) => logger.error('scheduled job failed', { job, error: (e as Error).message });

/** Which of the exchange's scheduled duties this config gives the collector. */
export function exchangeDuties(config: Config) {
  // In connected mode the sync carries usage: the monthly file export runs only by hand.
  const connected = config.exchange.mode === 'connected';
  // With Cisco's cloud as upstream and no connection, the portal's file carries usage: no Outpost bundle is due.
  const bundles = !connected && config.exchange.upstream.kind === 'outpost';
  return { connected, bundles };
}

/** A sample first: a collector that runs for less than the sampler's five minutes still records its day. */
export function sampleAndForecast(services: Services): void {
  services.history.sample();
  services.history.evaluateAlerts();
}

/** The collector's scheduled jobs, as the config and the services call for them. */
export function schedulesTable(services: Services, logFailure: LogFailure): Job[] {
  const { config } = services;
  const { connected, bundles } = exchangeDuties(config);
  return [
    { name: 'alerts', cron: config.alerts.evaluateCron, run: () => services.evaluateAlerts() },
    { name: 'notifications-digest', cron: config.notifications.digestCron, run: () => void services.notify.daily() },
    { name: 'trusted-time', cron: '* * * * *', run: () => services.time.check() },
    { name: 'refusal-counts', cron: '* * * * *', run: () => services.refusals.flush() },
    // Every five minutes: often enough to catch a day's peak, rare enough to cost nothing (one read of the counters).
    { name: 'usage-history', cron: '*/5 * * * *', run: () => void services.history.sample() },
    { name: 'usage-forecast', cron: config.forecast.evaluateCron, run: () => sampleAndForecast(services) },
    { name: 'event-checkpoint', cron: config.events.checkpointCron, run: () => void services.checkpoints.make('schedule') },
    ...(services.retention.enabled ? [{ name: 'report-retention', cron: config.retention.pruneCron, run: () => services.retention.prune({ dryRun: false, actor: 'schedule' }) }] : []),
    ...(connected ? [{ name: 'sync', cron: config.exchange.syncCron, run: () => void services.upstreamSync.scheduled().catch(logFailure('sync')) }] : []),
    ...(bundles ? [{ name: 'monthly-export', cron: config.exchange.exportCron, run: () => void services.exchange.jobs.runScheduledExport().catch(logFailure('monthly-export')) }] : []),
    {
      name: 'cisco-poll',
      cron: config.cisco.pollCron,
      // ACKs not yet delivered are tried again after each poll: a device down today gets its ACK when it is back.
      run: () => (services.cisco.devices.list().length ? services.cisco.poller.poll('schedule').then(() => services.cisco.delivery.deliver('schedule')) : undefined),
    },
    ...(config.backup.enabled ? [{ name: 'backup', cron: config.backup.cron, run: () => void services.backups.scheduled().catch(logFailure('backup')) }] : []),
    { name: 'reservations', cron: config.cisco.pollCron, run: () => void services.cloud.reservations.deliverPending('schedule').catch(logFailure('reservations')) },
    {
      name: 'inbox',
      cron: `*/${Math.min(59, config.exchange.inboxPollSeconds)} * * * * *`,
      run: () => void services.exchange.jobs.pollInbox().catch(logFailure('inbox')),
    },
  ];
}
