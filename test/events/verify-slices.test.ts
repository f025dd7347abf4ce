import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

function appendMany(n: number): void {
  h.services.db.transaction(() => {
    for (let i = 0; i < n; i++) h.services.events.append('test.filler', 'test', `s${i}`, null, { i });
  })();
}

describe('checking a long audit trail', () => {
  it('then it is read in slices with the event loop free between them, device reports are answered meanwhile, and it is intact', async () => {
    appendMany(50_000);
    const d = await h.registered();
    let running = true;
    let turns = 0;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const job = Promise.resolve(h.services.events.verifyChain(undefined, 500)).finally(() => (running = false));
    let answered = 0;
    const load = (async () => {
      while (running) {
        expect((await d.sendReport(d.report(TAG, 1))).status).toBe(200);
        answered++;
      }
    })();
    expect(await job).toBeNull();
    await load;
    expect(turns).toBeGreaterThanOrEqual(50_000 / 500 - 1);
    expect(answered).toBeGreaterThan(0);
    expect((await h.api.get('/api/v1/events/verify')).body).toMatchObject({ intact: true, firstBrokenId: null });
  });

  it('then an event altered at a slice boundary, or one removed, is found', async () => {
    appendMany(12_000);
    const first = (h.services.db.prepare('SELECT min(id) AS id FROM events').get() as { id: number }).id;
    const victim = first + 2_000; // the first row of the second slice: its link to the slice before is checked
    h.services.db.prepare("UPDATE events SET details = '{\"i\":-1}' WHERE id = ?").run(victim);
    expect((await h.api.get('/api/v1/events/verify')).body).toMatchObject({ intact: false, firstBrokenId: victim });
    h.services.db.prepare('DELETE FROM events WHERE id = ?').run(victim);
    expect((await h.api.get('/api/v1/events/verify')).body).toMatchObject({ intact: false, firstBrokenId: victim + 1 });
  });
});
