import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { ManualClock } from '../../src/shared/clock.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { parsePrometheus, valueOf, type Family } from '../helpers/prometheus.js';
import { closedPort } from '../helpers/ports.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { tempDir } from '../helpers/temp.js';
import { enrollOver } from '../upstream/sync-server.js';

/**
 * The families the first metrics test does not reach: each moved by the work it counts (a
 * sync with the reference upstream, a poll, a prune, a device report, a failed export).
 */
let h: Harness | undefined;
let up: RunningUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await up?.stop(0);
  h = up = undefined;
});

async function scrape(x: Harness): Promise<Map<string, Family>> {
  return parsePrometheus((await x.api.get('/metrics').expect(200)).text);
}

describe('metrics moved by the work they count', () => {
  it('when a sync succeeds and then fails, then the attempts, the last success and outpost_info say so', async () => {
    const dir = tempDir('metrics-sync');
    up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, host: '127.0.0.1' }, shutdown: { graceSeconds: 1 } } }), { logger: createLogger('error', true) });
    const x = (h = await startHarness({ config: { exchange: { mode: 'connected', connection: { url: up.url }, retry: { attempts: 2, baseSeconds: 0.01, maxSeconds: 0.02 } } } }));
    await enrollOver(x, up);
    const ok = { upstream: 'outpost', outcome: 'success' };
    const failed = { upstream: 'outpost', outcome: 'failure' };

    const before = await scrape(x);
    expect(valueOf(before, 'outpost_info', { mode: 'connected', upstream: 'outpost' })).toBe(1);
    expect(valueOf(before, 'outpost_sync_attempts_total', ok) ?? 0).toBe(0);
    expect(valueOf(before, 'outpost_sync_last_success_timestamp_seconds', { upstream: 'outpost' })).toBe(0);
    expect(valueOf(before, 'outpost_sync_seconds_since_success', { upstream: 'outpost' })).toBeUndefined();

    const d = await x.registered();
    await d.sendReport(d.report(TAG, 2));
    const startedAt = Date.now() / 1000;
    expect((await x.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result).toMatchObject({ status: 'synced', reports: { sent: 1 } });
    const synced = await scrape(x);
    expect(valueOf(synced, 'outpost_sync_attempts_total', ok)).toBe(1);
    expect(valueOf(synced, 'outpost_sync_last_success_timestamp_seconds', { upstream: 'outpost' })).toBeGreaterThanOrEqual(Math.floor(startedAt));
    expect(valueOf(synced, 'outpost_sync_seconds_since_success', { upstream: 'outpost' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(synced, 'outpost_reports_unacknowledged', { destination: 'outpost' })).toBe(0);

    await up.stop(0);
    up = undefined;
    expect((await x.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result).toMatchObject({ status: 'failed' });
    const down = await scrape(x);
    expect(valueOf(down, 'outpost_sync_attempts_total', failed)).toBe(1);
    expect(valueOf(down, 'outpost_sync_attempts_total', ok)).toBe(1);
  });

  it('when a polled device does not answer, then the poll is counted as a failure and the device as failing', async () => {
    const x = (h = await startHarness());
    expect(valueOf(await scrape(x), 'outpost_info', { mode: x.config.exchange.mode, upstream: x.config.exchange.upstream.kind })).toBe(1);
    await x.api.post('/api/v1/cisco/devices').send({ name: 'sw-a', host: '127.0.0.1', port: await closedPort(), username: 'u', password: 'p', vaId: x.defaultVa }).expect(201);
    const before = await scrape(x);
    expect(valueOf(before, 'outpost_polled_devices', { state: 'never_polled' })).toBe(1);
    expect(valueOf(before, 'outpost_poll_attempts_total', { outcome: 'failure' }) ?? 0).toBe(0);

    await x.api.post('/api/v1/cisco/poll').send({}).expect(200);
    const after = await scrape(x);
    expect(valueOf(after, 'outpost_poll_attempts_total', { outcome: 'failure' })).toBe(1);
    expect(valueOf(after, 'outpost_poll_attempts_total', { outcome: 'success' })).toBe(0);
    expect(valueOf(after, 'outpost_polled_devices', { state: 'failing' })).toBe(1);
    expect(valueOf(after, 'outpost_polled_devices', { state: 'never_polled' })).toBe(0);
  });

  it('when a device registers and reports and an old settled report is pruned, then devices by status and the pruned count move', async () => {
    const clock = new ManualClock(Date.now());
    const x = (h = await startHarness({ clock }));
    expect(valueOf(await scrape(x), 'outpost_devices', { status: 'active' })).toBe(0);
    const d = await x.registered();
    const t = Math.floor(clock.now() / 1000);
    expect((await d.sendReport(d.report(TAG, 3, t - 7200, 'old'))).status).toBe(200);
    expect((await d.sendReport(d.report(TAG, 4, t - 3600, 'current'))).status).toBe(200);
    // Device counts are cached for 30 s of the collector's clock.
    clock.advance(31_000);
    expect(valueOf(await scrape(x), 'outpost_devices', { status: 'active' })).toBe(1);

    const db = x.services.db;
    db.transaction(() => {
      db.prepare("INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at) SELECT destination, report_id, 'accepted', NULL, ? FROM report_pending").run(clock.now());
      db.prepare('DELETE FROM report_pending').run();
    })();
    clock.advance(401 * DAY);
    expect(valueOf(await scrape(x), 'outpost_reports_pruned_total', { source: 'device' }) ?? 0).toBe(0);
    expect((await x.api.post('/api/v1/reports/prune').send({}).expect(200)).body).toMatchObject({ pruned: 1, device: 1 });
    const pruned = await scrape(x);
    expect(valueOf(pruned, 'outpost_reports_pruned_total', { source: 'device' })).toBe(1);
    expect(valueOf(pruned, 'outpost_reports_pruned_total', { source: 'rum' })).toBe(0);
  });

  it('when an export fails, then it is counted as a failure and the trail names the reason', async () => {
    const x = (h = await startHarness({ config: { cisco: { portal: true } } }));
    const d = await x.registered();
    await d.sendReport(d.report(TAG, 1));
    const now = Math.floor(Date.now() / 1000);
    const rum = rumElement({ pid: 'C9300-24T', serial: 'FAIL-1', reportId: 1, tag: TAG, measurements: [{ start: now - 3600, end: now - 60, count: 2 }] });
    await x.api.post(`/api/v1/usage/rum?vaId=${x.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(rum)).expect(200);
    // The outbox is a file: neither the bundle nor the portal's upload can be written there.
    const outbox = join(x.config.exchange.bundleDir, 'outbox');
    rmSync(outbox, { recursive: true, force: true });
    writeFileSync(outbox, 'not a folder\n');

    expect((await x.api.post('/api/v1/exchange/export').send({})).status).toBeGreaterThanOrEqual(400);
    expect((await x.api.post('/api/v1/cisco/export').send({})).status).toBeGreaterThanOrEqual(400);
    const m = await scrape(x);
    expect(valueOf(m, 'outpost_export_attempts_total', { kind: 'bundle', outcome: 'failure' })).toBe(1);
    expect(valueOf(m, 'outpost_export_attempts_total', { kind: 'portal', outcome: 'failure' })).toBe(1);
    expect(valueOf(m, 'outpost_export_attempts_total', { kind: 'bundle', outcome: 'success' }) ?? 0).toBe(0);
    const failures = x.services.db.prepare("SELECT type, details FROM events WHERE type IN ('exchange.export_failed', 'cisco.portal_export_failed') ORDER BY id").all() as { type: string; details: string }[];
    expect(failures.map((f) => f.type)).toEqual(['exchange.export_failed', 'cisco.portal_export_failed']);
    for (const f of failures) expect(JSON.parse(f.details).reason).toMatch(/outbox/);

    // A refusal is no failure: nothing is counted for it.
    rmSync(outbox);
    await x.api.post('/api/v1/cisco/export').send({}).expect(200);
    x.services.db.prepare("DELETE FROM report_pending WHERE destination = 'portal'").run();
    expect((await x.api.post('/api/v1/cisco/export').send({})).body.error.code).toBe('nothing_to_export');
    const after = await scrape(x);
    expect(valueOf(after, 'outpost_export_attempts_total', { kind: 'portal', outcome: 'failure' })).toBe(1);
    expect(valueOf(after, 'outpost_export_attempts_total', { kind: 'portal', outcome: 'success' })).toBe(1);
  });
});
