import { copyFileSync, existsSync, readdirSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/processes.js';
import { acksApplied, cliJson, collectorAcks, eventsOf } from '../helpers/sync-site.js';
import { startModeSite, until, type ModeSite } from '../helpers/mode-site.js';

/**
 * Switching from the air gap to connected mode with a usage bundle out and not answered, and
 * the monthly schedule in connected mode: the collector and `outpost upstream serve` as
 * processes, the operator's steps through the real CLI, both stores read after each step. One
 * site lives through every switch, so each step also starts from what the ones before it left.
 */
describe('switching from the air gap to connected mode', () => {
  let s: ModeSite;
  beforeAll(async () => {
    s = await startModeSite();
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('when a usage bundle was exported but never carried, then after the switch to connected the sync sends its reports, and the file carried late is refused upstream as a replay', async () => {
    await s.fleet.report('a1');
    const exported = await cliJson(['export'], s.env);
    expect(exported.reports).toBe(3);
    await s.fleet.report('a2');

    await s.start('connected');
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced', reports: { sent: 6, accepted: 6 } });
    s.expectExact();

    // The operator carries the old file anyway: the upstream has a later bundle, and refuses it.
    const late = await cli(['upstream', 'process', exported.file], s.env);
    expect(late.code, late.stdout).not.toBe(0);
    expect(late.stderr).toMatch(/replay/);
    s.expectExact();
  }, 90_000);

  it('when a usage bundle was processed upstream but its response not imported, then after the switch the sync settles its reports and the old response is refused from the inbox', async () => {
    await s.start('disconnected');
    await s.fleet.report('a3');
    const exported = await cliJson(['export'], s.env);
    const processed = await cliJson(['upstream', 'process', exported.file], s.env);
    expect(processed.reports).toMatchObject({ accepted: 3, new: 3 });

    await s.start('connected');
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced', reports: { sent: 3, accepted: 3 } });
    s.expectExact();

    // The response arrives after the switch: it answers an export the sync has overtaken.
    const name = basename(processed.responseFile);
    copyFileSync(processed.responseFile, join(s.inbox, `.${name}`));
    renameSync(join(s.inbox, `.${name}`), join(s.inbox, name));
    await until(() => existsSync(join(s.rejected, name)), 20_000, `${name} moved to rejected/`);
    expect(readdirSync(s.inbox).filter((f) => !f.startsWith('.'))).toEqual([]);
    const refusal = eventsOf(s.dir, 'exchange.rejected').find((e) => e.subject === name);
    expect(refusal?.details.code).toBe('replay');
    s.expectExact();
  }, 90_000);

  it('when connected, then a monthly export due at start does not run and none runs on its schedule, while export by hand works and the inbox is still read', async () => {
    const markDue = () => {
      const db = new Database(join(s.dir, 'outpost.db'));
      try {
        db.prepare("INSERT INTO meta (key, value) VALUES ('exchange.next_export_due', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(Date.now() - 3_600_000));
      } finally {
        db.close();
      }
    };
    await s.stopCollector();
    markDue(); // the collector is stopped: the store is the test's for this one write
    const before = s.outbound();
    // Every second, too: in connected mode the schedule must not hold the export at all.
    await s.start('connected', { OUTPOST_EXCHANGE_EXPORT_CRON: '* * * * * *' });
    await s.fleet.report('c1');
    const byHand = await cliJson(['export'], s.env);
    expect(byHand.reports).toBe(3);
    const processed = await cliJson(['upstream', 'process', byHand.file], s.env);
    copyFileSync(processed.responseFile, join(s.inbox, basename(processed.responseFile)));
    // The import's last ACK slice and its closing event are two commits: wait for the event too.
    await until(() => collectorAcks(s.dir).pending === 0 && acksApplied(s.dir) === s.fleet.sent.length, 20_000, 'the response in the inbox applied');
    s.expectExact();
    expect(s.outbound()).toBe(before + 1);
    expect(eventsOf(s.dir, 'exchange.exported').filter((e) => e.actor === 'schedule')).toEqual([]);

    // The same due export in disconnected mode runs at start: the check above could fail.
    await s.stopCollector();
    markDue();
    await s.start('disconnected');
    expect(eventsOf(s.dir, 'exchange.exported').filter((e) => e.actor === 'schedule')).toHaveLength(1);
  }, 90_000);
});
