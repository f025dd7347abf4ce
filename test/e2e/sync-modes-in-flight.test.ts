import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/processes.js';
import { cliJson, eventsOf, upstreamReportIds } from '../helpers/sync-site.js';
import { startModeSite, type ModeSite } from '../helpers/mode-site.js';

/**
 * Switching from connected mode to the air gap and back with a sync part in flight (posted and
 * processed upstream, its answer lost on the way back): the collector and `outpost upstream
 * serve` as processes behind a gate that drops the fetch of an answer, the operator's steps
 * through the real CLI, both stores read after each step.
 */
describe('switching from connected mode to the air gap with a part in flight', () => {
  let s: ModeSite;
  beforeAll(async () => {
    s = await startModeSite();
    await s.start('connected');
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('when a part is in flight (posted and processed, its answer never fetched), then the site can switch to the air gap, carry an export both ways, switch back, and the stale part is dropped', async () => {
    await s.fleet.report('b1');
    s.gate.blockAnswers = true;
    const failed = await cliJson(['sync', 'now'], s.env, 1);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'cut' } });
    const held = (await s.status()).inFlight;
    expect(held).toMatchObject({ reports: 3, postedAt: expect.any(String) });
    s.gate.blockAnswers = false;
    // The upstream counted the part it was given: only its answer was lost.
    expect(upstreamReportIds(s.upDir)).toEqual(s.fleet.expected);

    await s.start('disconnected');
    await s.fleet.report('b2');
    const exported = await cliJson(['export'], s.env);
    expect(exported.reports).toBe(6); // the part in flight was never answered: its reports still wait
    expect(exported.sequence).toBeGreaterThan(held.sequence);
    const processed = await cliJson(['upstream', 'process', exported.file], s.env);
    expect(processed.reports).toMatchObject({ accepted: 6, new: 3, alreadyCounted: 3 });
    expect(await cliJson(['import', processed.responseFile], s.env)).toMatchObject({ status: 'applied', acks: { accepted: 6 } });
    s.expectExact();

    await s.start('connected');
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced', reports: { sent: 0 } });
    expect((await s.status()).inFlight).toBeNull();
    const dropped = eventsOf(s.dir, 'sync.part_dropped');
    expect(dropped).toEqual([expect.objectContaining({ subject: held.bundleId, details: expect.objectContaining({ sequence: held.sequence, reason: 'overtaken' }) })]);
    s.expectExact();
  }, 90_000);

  it('when a part is in flight and the export carried meanwhile is answered only after the switch back, then the sync applies the part, and the late response is refused with its ACKs already settled', async () => {
    await s.fleet.report('b3');
    s.gate.blockAnswers = true;
    expect(await cliJson(['sync', 'now'], s.env, 1)).toMatchObject({ status: 'failed', error: { code: 'cut' } });
    s.gate.blockAnswers = false;
    const held = (await s.status()).inFlight;
    expect(held).toMatchObject({ reports: 3, postedAt: expect.any(String) });

    await s.start('disconnected');
    await s.fleet.report('b4');
    const exported = await cliJson(['export'], s.env);
    expect(exported.reports).toBe(6);
    const processed = await cliJson(['upstream', 'process', exported.file], s.env);
    expect(processed.reports).toMatchObject({ accepted: 6, new: 3, alreadyCounted: 3 });

    // Back to connected before the response is imported: the part in flight is answered and applied, then the rest goes up.
    await s.start('connected');
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced', reports: { sent: 6, accepted: 6 } });
    expect((await s.status()).inFlight).toBeNull();
    s.expectExact();

    const late = await cli(['import', processed.responseFile, '--json'], s.env);
    expect(late.code, late.stdout).not.toBe(0);
    expect(JSON.parse(late.stderr).error).toMatchObject({ code: 'replay', message: expect.stringContaining('refused as a replay') });
    s.expectExact();
  }, 90_000);
});
