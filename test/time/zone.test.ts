import { describe, expect, it } from 'vitest';
import cron from 'node-cron';
import { loadConfig, ConfigError } from '../../src/config/load.js';
import { ManualClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { Scheduler } from '../../src/schedules.js';
import { ExchangeJobs, previousPeriod } from '../../src/exchange/jobs.js';
import { currentPeriod } from '../../src/exchange/export.js';
import { nextCronRun } from '../../src/time/zone.js';
import { startHarness } from '../helpers/harness.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
// 02:00 on 1 March 2027 in Kiritimati (UTC+14) is still 28 February in UTC.
const KIRITIMATI_MARCH_FIRST = Date.UTC(2027, 1, 28, 12);
// 02:00 on 1 March 2027 in Los Angeles (UTC-8) is 10:00 UTC.
const LOS_ANGELES_MARCH_FIRST = Date.UTC(2027, 2, 1, 10);

describe('the export period in a time zone', () => {
  it('when the monthly export runs at 02:00 on the first east of UTC, then it covers the month just ended there', () => {
    expect(previousPeriod(KIRITIMATI_MARCH_FIRST, 'Pacific/Kiritimati')).toBe('2027-02');
    expect(previousPeriod(LOS_ANGELES_MARCH_FIRST, 'America/Los_Angeles')).toBe('2027-02');
    expect(previousPeriod(Date.UTC(2027, 0, 1, 2), 'UTC')).toBe('2026-12');
    // The same instants on another calendar name other months: the zone decides.
    expect(previousPeriod(KIRITIMATI_MARCH_FIRST, 'UTC')).toBe('2027-01');
    expect(currentPeriod(KIRITIMATI_MARCH_FIRST, 'Pacific/Kiritimati')).toBe('2027-03');
    expect(currentPeriod(Date.UTC(2027, 2, 1, 5), 'America/Los_Angeles')).toBe('2027-02');
  });

  it('then the next export is due at 02:00 on the first in that zone, read from the given time', () => {
    const feb27 = Date.UTC(2027, 1, 27);
    expect(iso(nextCronRun('0 2 1 * *', feb27, 'Pacific/Kiritimati'))).toBe(iso(KIRITIMATI_MARCH_FIRST));
    expect(iso(nextCronRun('0 2 1 * *', feb27, 'America/Los_Angeles'))).toBe(iso(LOS_ANGELES_MARCH_FIRST));
    expect(iso(nextCronRun('0 2 1 * *', feb27, 'UTC'))).toBe('2027-03-01T02:00:00.000Z');
    expect(iso(nextCronRun('0 2 1 * *', KIRITIMATI_MARCH_FIRST, 'Pacific/Kiritimati'))).toBe('2027-03-31T12:00:00.000Z');
    // 02:30 does not exist in Los Angeles on the day summer time starts: the next day's.
    expect(iso(nextCronRun('30 2 * * *', Date.UTC(2027, 2, 14, 8), 'America/Los_Angeles'))).toBe('2027-03-15T09:30:00.000Z');
  });
});

describe('the scheduled export with a ManualClock around a month boundary', () => {
  for (const [zone, due] of [['Pacific/Kiritimati', KIRITIMATI_MARCH_FIRST], ['America/Los_Angeles', LOS_ANGELES_MARCH_FIRST]] as const) {
    it(`when the zone is ${zone}, then the export due on the first runs then and is labelled with the month just ended`, async () => {
      const clock = new ManualClock(due - 3_600_000);
      const h = await startHarness({ clock });
      try {
        const s = h.services;
        const jobs = new ExchangeJobs(s.db, s.time, s.exchange.state, s.exchange.exporter, s.exchange.importer, s.alerts, s.events, s.logger, {
          exportCron: '0 2 1 * *', bundleDir: h.config.exchange.bundleDir, timeZone: zone,
        });
        expect(await jobs.catchUp()).toBeNull();
        expect(iso(s.exchange.state.nextExportDue)).toBe(iso(due));
        clock.advance(3_600_000);
        const file = await jobs.catchUp();
        expect(file).toMatch(/usage-2027-02-seq000001/);
        expect(iso(s.exchange.state.nextExportDue)).toBe(iso(nextCronRun('0 2 1 * *', due, zone)));
      } finally {
        await h.close();
      }
    });
  }
});

describe('the scheduler', () => {
  it('when a time zone is configured, then cron fields are read in it, not in the host time zone', () => {
    const scheduler = new Scheduler([{ name: 'zone-probe', cron: '0 2 1 * *', run: () => {} }], createLogger('error', true), 'Pacific/Kiritimati');
    scheduler.start();
    try {
      const task = [...cron.getTasks().values()].find((t) => t.name === 'zone-probe')!;
      expect(task.match(new Date(KIRITIMATI_MARCH_FIRST))).toBe(true);
      expect(task.match(new Date(Date.UTC(2027, 2, 1, 2)))).toBe(false);
    } finally {
      scheduler.stop();
    }
  });
});

describe('the time.zone setting', () => {
  it('then it defaults to UTC', () => {
    expect(loadConfig({ env: {} }).time.zone).toBe('UTC');
  });

  it('when it names no time zone, then start-up stops with an error naming the key', () => {
    expect(() => loadConfig({ env: { OUTPOST_TIME_ZONE: 'Mars/Olympus_Mons' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { OUTPOST_TIME_ZONE: 'Mars/Olympus_Mons' } })).toThrow(/time\.zone \(OUTPOST_TIME_ZONE\): an IANA time zone name/);
    expect(loadConfig({ env: { OUTPOST_TIME_ZONE: 'Pacific/Kiritimati' } }).time.zone).toBe('Pacific/Kiritimati');
  });
});
