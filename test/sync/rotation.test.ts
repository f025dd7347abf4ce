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

async function connected() {
  const dir = tempDir('sync-rotation');
  up = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, host: '127.0.0.1' }, shutdown: { graceSeconds: 1 } } }), { logger: createLogger('error', true) });
  h = await startHarness({ config: { exchange: { mode: 'connected', connection: { url: up.url }, retry: { attempts: 1, baseSeconds: 0, maxSeconds: 0 } } } });
  await enrollOver(h, up);
  up.service.addTag(TAG, 'DNA');
  const d = await h.registered();
  return d;
}

const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;
const events = (type: string) => h!.count('SELECT count(*) FROM events WHERE type = ?', type);

describe('key rotations over the connection', () => {
  it('when the collector has rotated its key, then the sync sends the statement before any part its new key signs, once', async () => {
    const d = await connected();
    await h!.api.post('/api/v1/exchange/rotate-key').send({}).expect(200);
    await d.sendReport(d.report(TAG, 1, undefined, 'after-rotation'));
    expect(await sync()).toMatchObject({ status: 'synced', reports: { accepted: 1 } });
    expect(up!.service.collector(h!.services.identity.collectorId)!.key_id).toBe(h!.services.identity.fingerprint);
    expect(events('sync.rotation_delivered')).toBe(1);
    expect(await sync()).toMatchObject({ status: 'synced' });
    expect(events('sync.rotation_delivered')).toBe(1);
  });

  it('when the upstream has rotated its key, then the sync fetches its statement, pins the new key, and applies answers it signs', async () => {
    const d = await connected();
    const before = h!.services.exchange.state.upstreamKeys().map((k) => k.key_id);
    const r = await up!.service.rotateOwnKey(30);
    await d.sendReport(d.report(TAG, 1, undefined, 'after-upstream-rotation'));
    expect(await sync()).toMatchObject({ status: 'synced', reports: { accepted: 1 } });
    const keys = h!.services.exchange.state.upstreamKeys();
    expect(keys.find((k) => k.key_id === r.to)?.status).toBe('active');
    expect(keys.find((k) => k.key_id === before[0])?.status).toBe('retired');
  });

  it("when a statement the upstream applied is sent again after the old key's grace, then it is answered as applied, not refused", async () => {
    const d = await connected();
    await h!.api.post('/api/v1/exchange/rotate-key').send({ graceDays: 0 }).expect(200);
    await d.sendReport(d.report(TAG, 1));
    expect(await sync()).toMatchObject({ status: 'synced' });
    h!.services.db.prepare("DELETE FROM meta WHERE key = 'sync.rotation_delivered'").run(); // as if the answer was lost
    expect(await sync()).toMatchObject({ status: 'synced' });
    expect(events('sync.rotation_delivered')).toBe(2);
  });
});
