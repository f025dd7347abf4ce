import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement } from '../helpers/rum.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

/** One report as a device's REST API gives it: the JSON of an element of `usage`, with a header. */
function polled(reportId: number, counts: number[]): string {
  const now = Math.floor(Date.now() / 1000);
  const xml = rumElement({ pid: 'C9300-24T', serial: 'POLL1', reportId, tag: TAG, measurements: counts.map((count, i) => ({ start: now - 3600 * (counts.length - i), end: now - 3600 * (counts.length - i - 1), count })) });
  const body = JSON.parse(/<!\[CDATA\[([\s\S]*)\]\]>/.exec(xml)![1]!) as Record<string, unknown>;
  return JSON.stringify({ header: { type: 'rum', created: now }, ...body });
}

const opts = () => ({ vaId: h.defaultVa, skipInvalid: false, actor: 'poll', maxElements: 1000, maxFutureSkewMs: 86_400_000, staleAfterDays: 90 });

describe('reports polled from a device', () => {
  it('when polled reports are stored, then they count as RUM reports do, kept byte for byte; the same again is a duplicate, a grown one replaces it', async () => {
    const first = polled(11, [3]);
    const r = await h.services.rum.importPolled([first], opts());
    expect(r).toMatchObject({ accepted: 1, devicesCreated: 1 });
    expect(h.services.db.prepare("SELECT body FROM reports WHERE source = 'rum'").pluck().get()).toBe(first);
    expect((await h.services.rum.importPolled([first], opts())).duplicate).toBe(1);
    const grown = polled(11, [3, 5]);
    expect((await h.services.rum.importPolled([grown], opts())).replaced).toBe(1);
    expect(h.services.db.prepare("SELECT body FROM reports WHERE source = 'rum'").pluck().get()).toBe(grown);
  });

  it('when one polled report is malformed, then nothing is stored and the problem names it', async () => {
    const bad = JSON.stringify({ header: {}, payload: '{"version":"2.0"}', signature: { signing_type: 'builtin', value: 'x' } });
    const e = await h.services.rum.importPolled([polled(12, [1]), bad], opts()).then(() => null, (x: { code: string; message: string }) => x);
    expect(e).toMatchObject({ code: 'invalid_rum_file', message: expect.stringContaining('element 2') });
    expect(h.count("SELECT count(*) FROM reports WHERE source = 'rum'")).toBe(0);
  });
});
