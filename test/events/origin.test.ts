import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { cli, envFor, serve, tempDataDir } from '../helpers/processes.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const lastEvent = async (type: string) => (await h.api.get(`/api/v1/events?type=${type}`).expect(200)).body.items[0] as { actor: string; origin: string | null };

describe('where each event came from', () => {
  it('when an operator and a device act over HTTP, then their events record the address; what the collector does by itself records none; the chain covers it', async () => {
    await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201);
    expect((await lastEvent('va.created')).origin).toMatch(/127\.0\.0\.1$/);
    const d = await h.registered();
    await d.sendReport(d.report(TAG, 1));
    expect((await lastEvent('device.registered')).origin).toMatch(/127\.0\.0\.1$/);
    h.services.events.append('test.scheduled', 'system', null, null, {});
    expect((await lastEvent('test.scheduled')).origin).toBeNull();
    expect((await h.api.get('/api/v1/events/verify').expect(200)).body.intact).toBe(true);
    // The origin is under the hash: changing it breaks the chain.
    h.services.db.prepare("UPDATE events SET origin = '192.0.2.66' WHERE type = 'va.created'").run();
    expect((await h.api.get('/api/v1/events/verify').expect(200)).body.intact).toBe(false);
  });

  it('when the CLI acts over the local socket, then its events say so', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    const server = await serve(dir, env);
    try {
      expect((await cli(['va', 'create', 'Lab'], env)).code).toBe(0);
      const events = JSON.parse((await cli(['events', '--type', 'va.created', '--json'], env)).stdout) as { origin: string; actor: string }[];
      expect(events[0]).toMatchObject({ origin: 'socket', actor: expect.stringMatching(/^cli:\S+ \(self-reported\)$/) });
    } finally {
      await server.stop();
    }
  }, 30_000);
});
