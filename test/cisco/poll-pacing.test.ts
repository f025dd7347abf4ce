import { afterEach, describe, expect, it, vi } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';

let h: Harness | undefined;
let fake: FakeIosXe | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  await fake?.stop();
  h = fake = undefined;
});

describe('polling many devices at once', () => {
  it('when several devices answer together, then their reports are stored one device at a time, and every report is stored', async () => {
    const ca = makeTestCa();
    fake = await startFakeIosXe({ ca, count: 8 });
    h = await startHarness({ config: { cisco: { caFile: ca.caFile, timeoutSeconds: 5, retries: 0, concurrency: 4 } } });
    for (const d of fake.devices) {
      await h.api.post('/api/v1/cisco/devices').send({ name: `sw-${d.index}`, host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201);
    }
    // Each store made long enough that answers fetched together would meet inside it.
    const rum = h.services.rum;
    const store = rum.importPolled.bind(rum);
    let inFlight = 0;
    let most = 0;
    vi.spyOn(rum, 'importPolled').mockImplementation(async (...args) => {
      most = Math.max(most, ++inFlight);
      try {
        await new Promise((r) => setTimeout(r, 150));
        return await store(...args);
      } finally {
        inFlight--;
      }
    });
    const items = (await h.api.post('/api/v1/cisco/poll').send({}).expect(200)).body.items as { ok: boolean; accepted: number }[];
    expect(items.map((i) => [i.ok, i.accepted])).toEqual(Array(8).fill([true, 2]));
    expect(most).toBe(1);
    expect(h.count("SELECT count(*) FROM reports WHERE source = 'rum'")).toBe(16);
  });
});
