import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/open.js';
import { ManualClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { UpstreamRuns, type UpstreamRunsOptions } from '../../src/sync/upstream-runs.js';
import { tempDir } from '../helpers/temp.js';

// The scheduler both upstream syncs (Outpost's and Cisco's cloud) run on, through a real store:
// the next due time is written in a transaction of it, as the services keep theirs in `meta`.
describe('the runs of an upstream exchange', () => {
  let db: Db | undefined;
  afterEach(() => db?.close());

  function setUp(over: Partial<UpstreamRunsOptions<string>> = {}) {
    db = openStore(join(tempDir('runs'), 'outpost.db'));
    const store = db;
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 10, 30));
    const log = new PassThrough();
    const lines: string[] = [];
    log.on('data', (b: Buffer) => lines.push(b.toString()));
    const started: string[] = [];
    let release: (v: string) => void = () => {};
    let due: number | null = null;
    const runs = new UpstreamRuns<string>(store, clock, createLogger('info', { stream: log, format: 'json' }), {
      what: 'test sync', cron: '0 * * * *', timeZone: 'UTC',
      scheduled: () => true,
      ready: () => {},
      once: (actor, signal) => {
        started.push(actor);
        return new Promise((resolve) => {
          release = resolve;
          signal.addEventListener('abort', () => resolve('aborted'));
        });
      },
      due: {
        get: () => due,
        set: (at) => {
          if (!store.inTransaction) throw new Error('the next due time must be written in a transaction');
          due = at;
        },
      },
      ...over,
    });
    return { runs, clock, started, lines, finish: (v: string) => release(v), due: () => due, setDue: (v: number) => (due = v) };
  }

  it('when a run is under way, then a second caller joins it and start says it did not start another', async () => {
    const t = setUp();
    const a = t.runs.run('alice');
    const b = t.runs.run('bob');
    expect(t.runs.start('carol')).toEqual({ started: false });
    expect(t.started).toEqual(['alice']);
    expect(t.runs.busy).toBe(true);
    t.finish('done');
    expect(await a).toBe('done');
    expect(await b).toBe('done');
    expect(t.runs.busy).toBe(false);
    expect(t.runs.start('dave')).toEqual({ started: true });
    expect(t.started).toEqual(['alice', 'dave']);
    t.finish('again');
    await t.runs.idle();
  });

  it('when a run cannot start, then start throws and run rejects with the reason, and nothing runs', async () => {
    const t = setUp({ ready: () => { throw new Error('no upstream is configured'); } });
    expect(() => t.runs.start('alice')).toThrow('no upstream is configured');
    await expect(t.runs.run('alice')).rejects.toThrow('no upstream is configured');
    expect(t.started).toEqual([]);
  });

  it('when a scheduled run fails, then the next due time is still stored, the next cron time after now', async () => {
    const t = setUp({ once: () => Promise.reject(new Error('unreachable')) });
    await expect(t.runs.scheduled()).rejects.toThrow('unreachable');
    expect(t.due()).toBe(Date.UTC(2026, 10, 30, 11, 0));
  });

  it('when scheduling is off (disconnected mode), then a scheduled run and a catch-up do nothing', async () => {
    const t = setUp({ scheduled: () => false });
    expect(await t.runs.scheduled()).toBeNull();
    t.runs.catchUp();
    expect(t.started).toEqual([]);
    expect(t.due()).toBeNull();
  });

  it('when the stored due time is past at start, then the missed run is made, logged, and the next one stored', async () => {
    const t = setUp();
    t.runs.catchUp(); // first start: nothing was due; the next run is stored, nothing runs
    expect(t.started).toEqual([]);
    expect(t.due()).toBe(Date.UTC(2026, 10, 30, 11, 0));
    t.clock.set(Date.UTC(2026, 10, 30, 13, 5)); // down across two hours
    t.runs.catchUp();
    expect(t.started).toEqual(['schedule']);
    t.finish('caught up');
    await t.runs.idle();
    await new Promise((r) => setImmediate(r));
    expect(t.due()).toBe(Date.UTC(2026, 10, 30, 14, 0));
    expect(t.lines.join('')).toContain('running the test sync missed while the collector was down');
  });

  it('when the collector stops, then the running run is told through its signal and stop waits for it to end', async () => {
    const t = setUp();
    const r = t.runs.run('alice');
    await t.runs.stop();
    expect(await r).toBe('aborted');
    expect(t.runs.signal.aborted).toBe(true);
  });
});
