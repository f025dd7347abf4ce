import { join } from 'node:path';
import { closedPort } from '../helpers/ports.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { enroll, startUpstream, type Upstream } from '../helpers/exchange.js';
import type { SyncTransport } from '../../src/sync/transport.js';

let h: Harness | undefined;
let up: Upstream | undefined;
afterEach(async () => {
  up?.close();
  await h?.close();
  h = up = undefined;
});

describe('the status while a sync ends', () => {
  // `outpost sync now` follows the status until it stops running, then prints lastRun: a status
  // that stopped running before the run was recorded made it print the sync before (or nothing).
  it('when a sync has failed but still closes its connection, then the status shows it running until its result is the last run', async () => {
    h = await startHarness({ config: { exchange: { mode: 'connected', connection: { url: `http://127.0.0.1:${await closedPort()}` }, retry: { attempts: 1, baseSeconds: 0, maxSeconds: 0 } } } });
    up = startUpstream(join(h.dir, 'upstream'));
    await enroll(h, up);
    const sync = h.services.sync as unknown as { connect: () => SyncTransport };
    const connect = sync.connect;
    let release!: () => void;
    const closing = new Promise<void>((r) => (release = r));
    let closeCalled!: () => void;
    const closeStarted = new Promise<void>((r) => (closeCalled = r));
    sync.connect = () => {
      const t = connect();
      return { ...t, close: () => (closeCalled(), closing.then(() => t.close())) };
    };

    expect((await h.api.post('/api/v1/exchange/sync').send({}).expect(202)).body).toEqual({ started: true });
    await closeStarted;
    const during = (await h.api.get('/api/v1/exchange/status').expect(200)).body;
    expect(during.running || during.lastRun?.status === 'failed').toBe(true);
    release();
    await h.services.sync.idle();
    const after = (await h.api.get('/api/v1/exchange/status').expect(200)).body;
    expect(after).toMatchObject({ running: false, lastRun: { status: 'failed', error: { code: 'unreachable' } } });
  });
});
