import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { enrollOver } from '../upstream/sync-server.js';

let h: Harness | undefined;
let up: RunningUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await up?.stop(0);
  h = up = undefined;
});

describe('a transfer through the reference upstream, connected', () => {
  it('when the collector syncs, then the transfer travels in the sync and comes back confirmed, both ledgers moved', async () => {
    up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(tempDir('sync'), 'upstream'), port: 0, host: '127.0.0.1' }, shutdown: { graceSeconds: 1 } } }), {
      logger: createLogger('error', true),
    });
    h = await startHarness({ config: { exchange: { mode: 'connected', connection: { url: up.url }, retry: { attempts: 2, baseSeconds: 0.01, maxSeconds: 0.02 } } } });
    await enrollOver(h, up);
    const campus = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body.id;
    up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 20, startsAt: 0, endsAt: null });
    const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;
    expect((await sync()).status).toBe('synced');
    const t = (await h.api.post('/api/v1/licenses/transfers').send({ fromVaId: h.defaultVa, toVaId: campus, tag: TAG, quantity: 7 }).expect(201)).body;
    expect((await sync()).status).toBe('synced');
    expect((await h.api.get('/api/v1/licenses/transfers').expect(200)).body.items).toMatchObject([{ id: t.id, state: 'confirmed' }]);
    const upstreamOwned = (va: string) => up!.service.db.prepare('SELECT sum(quantity) FROM entitlements WHERE va_id = ?').pluck().get(va);
    expect([upstreamOwned(h.defaultVa), upstreamOwned(campus)]).toEqual([13, 7]);
    const lines = async (va: string) => (await h!.api.get(`/api/v1/virtual-accounts/${va}/entitlements`).expect(200)).body.items.map((l: { quantity: number }) => l.quantity);
    expect([await lines(h.defaultVa), await lines(campus)]).toEqual([[13], [7]]);
  });
});
