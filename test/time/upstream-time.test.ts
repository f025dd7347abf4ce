import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { enroll, type Upstream } from '../helpers/exchange.js';
import { openUpstreamStore } from '../../src/upstream/store.js';
import { UpstreamService } from '../../src/upstream/service.js';
import { processUsageBundle } from '../../src/upstream/process.js';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';
import { DAY_MS, type Clock } from '../../src/shared/clock.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A reference upstream whose clock is twenty years ahead. */
function upstreamFromTheFuture(dir: string): Upstream {
  const clock: Clock = { now: () => Date.now() + 20 * 365 * DAY_MS };
  const db = openUpstreamStore(dir);
  const { identity } = loadOrCreateIdentity(dir, 'upstream');
  const service = new UpstreamService(db, clock, identity, join(dir, 'outbox'), dir);
  return { dir, service, process: (file, force = false) => processUsageBundle(service, file, { force }), close: () => db.close() };
}

describe('when a verified response carries a creation time far in the future', () => {
  it('then it is applied, but its time is not believed: no token expires, and an alert and an event say so', async () => {
    const h: Harness = await startHarness();
    closers.push(() => h.close());
    const up = upstreamFromTheFuture(join(h.dir, 'upstream'));
    closers.push(() => up.close());
    await enroll(h, up);
    up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null });
    const secret = await h.token({ expiresInDays: 30 });
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 1));
    const exp = (await h.api.post('/api/v1/exchange/export').send({ period: '2026-11' }).expect(200)).body;
    const r = await up.process(exp.file);
    const imported = await h.api.post('/api/v1/exchange/import').send({ file: r.responseFile }).expect(200);
    expect(imported.body.status).toBe('applied');

    expect(Math.abs(h.services.time.now() - Date.now())).toBeLessThan(60_000);
    const tokens = (await h.api.get('/api/v1/tokens')).body.items as { state: string }[];
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.every((t) => t.state === 'active')).toBe(true);
    expect((await h.device().register(secret)).status).toBe(201);
    const alerts = (await h.api.get('/api/v1/alerts?kind=clock_forward')).body.items;
    expect(alerts.map((a: { subject: string }) => a.subject)).toEqual(['upstream']);
    expect((await h.api.get('/api/v1/events?type=time.upstream_ahead')).body.items).toHaveLength(1);
    const status = (await h.api.get('/api/v1/time')).body;
    expect(status.systemClock).toBe('believed');
  });
});
