import { join } from 'node:path';
import { closedPort } from '../helpers/ports.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/shared/clock.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { enroll, startUpstream, type Upstream } from '../helpers/exchange.js';

let h: Harness | undefined;
let up: Upstream | undefined;
afterEach(async () => {
  up?.close();
  await h?.close();
  h = up = undefined;
});

async function site(config: Record<string, unknown>, clock?: ManualClock) {
  h = await startHarness({ config, ...(clock ? { clock } : {}) });
  up = startUpstream(join(h.dir, 'upstream'));
  return h;
}

const HOUR = 3_600_000;

describe('sync status and alerts', () => {
  it('when no upstream is configured, then a sync is refused naming the setting, and the status says so', async () => {
    await site({});
    const r = await h!.api.post('/api/v1/exchange/sync').send({});
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ code: 'no_upstream', message: expect.stringContaining('exchange.connection.url') });
    const s = (await h!.api.get('/api/v1/exchange/status').expect(200)).body;
    expect(s).toMatchObject({ mode: 'disconnected', upstream: null, running: false, lastAttemptAt: null, inFlight: null, waiting: { reports: 0 } });
  });

  it('when the collector is not enrolled, then a sync is refused saying to enroll first', async () => {
    await site({ exchange: { mode: 'connected', connection: { url: `http://127.0.0.1:${await closedPort()}` } } });
    const r = await h!.api.post('/api/v1/exchange/sync').send({});
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('not_enrolled');
  });

  it('when the upstream cannot be reached, then the sync fails after its retries, the status says why in words, and the alerts follow the configured hours', async () => {
    const clock = new ManualClock(Date.now());
    const port = await closedPort();
    await site({ exchange: { mode: 'connected', syncOverdueHours: 3, unreachableAlertHours: 4, connection: { url: `http://127.0.0.1:${port}` }, retry: { attempts: 2, baseSeconds: 0.01, maxSeconds: 0.02 } } }, clock);
    await enroll(h!, up!);
    const d = await h!.registered();
    await d.sendReport(d.report('regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896', 2));
    await h!.services.evaluateAlerts(); // connected mode is seen now: overdue counts from here

    const r = (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;
    expect(r).toMatchObject({ status: 'failed', parts: 0, error: { code: expect.any(String) } });
    const s = (await h!.api.get('/api/v1/exchange/status').expect(200)).body;
    expect(s.lastError.message).toContain(`127.0.0.1:${port}`);
    expect(s.lastError.message).toContain('after 2 attempts');
    expect(s).toMatchObject({ mode: 'connected', lastSuccessAt: null, unreachableSince: expect.any(String), inFlight: null, waiting: { reports: 1 } });

    const open = async (kind: string) => (await h!.api.get(`/api/v1/alerts?kind=${kind}`)).body.items.length;
    clock.advance(3 * HOUR + 60_000);
    await h!.services.evaluateAlerts();
    expect(await open('sync_overdue')).toBe(1);
    expect(await open('upstream_unreachable')).toBe(0);
    clock.advance(HOUR);
    await h!.services.evaluateAlerts();
    expect(await open('upstream_unreachable')).toBe(1);
    const alert = (await h!.api.get('/api/v1/alerts?kind=upstream_unreachable')).body.items[0];
    expect(alert.message).toContain(`127.0.0.1:${port}`);
  });
});
