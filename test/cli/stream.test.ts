import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSite, type Site } from '../helpers/exchange.js';
import { TAG } from '../helpers/harness.js';
import { seedPendingReports } from '../helpers/seed-reports.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
});
afterEach(() => s.close());

type Line = { progress?: { phase?: string; done: number; total: number | null }; result?: any; error?: { code: string; message: string } };

/** Calls a route as the CLI does when it follows progress, and reads every NDJSON line. */
async function streamed(path: string, body: unknown): Promise<{ status: number; type: string; lines: Line[] }> {
  const r = await request(`${s.h.url}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify(body),
  });
  const text = await r.body.text();
  return { status: r.statusCode, type: String(r.headers['content-type']), lines: text.trim().split('\n').map((l) => JSON.parse(l) as Line) };
}

describe('the local API streaming the progress of a long operation', () => {
  it('then an export sends its progress lines, counting reports toward the total, before its one final result line', async () => {
    seedPendingReports(s.h.services.db, s.h.defaultVa, 3000, TAG);
    const r = await streamed('/exchange/export', { period: '2026-11' });
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/x-ndjson/);
    const progress = r.lines.slice(0, -1);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.every((l) => l.progress && !('result' in l))).toBe(true);
    const writes = progress.filter((l) => l.progress!.phase === 'write').map((l) => l.progress!);
    expect(writes[0]).toEqual({ phase: 'write', done: 0, total: 3000 });
    expect(writes.at(-1)).toEqual({ phase: 'write', done: 3000, total: 3000 });
    expect(r.lines.at(-1)!.result).toMatchObject({ reports: 3000, period: '2026-11' });
  });

  it('then a failure after progress has been sent is the final line, an error with its code, and nothing is left half-written', async () => {
    seedPendingReports(s.h.services.db, s.h.defaultVa, 500, TAG);
    // The outbox replaced by a file: the bundle cannot be placed once its payloads are written.
    const outbox = join(s.h.services.config.exchange.bundleDir, 'outbox');
    rmSync(outbox, { recursive: true, force: true });
    writeFileSync(outbox, 'not a folder');
    const r = await streamed('/exchange/export', { period: '2026-11' });
    expect(r.status).toBe(200);
    expect(r.lines.filter((l) => l.progress).length).toBeGreaterThan(1);
    const last = r.lines.at(-1)!;
    expect(last.result).toBeUndefined();
    expect(last.error?.code).toMatch(/\w+/);
    expect(last.error?.code).not.toBe('internal');
    expect(s.h.count("SELECT count(*) FROM events WHERE type = 'exchange.exported'")).toBe(0);
  });

  it('then a refusal before any work keeps its own HTTP status and JSON body, as without the stream', async () => {
    const r = await request(`${s.h.url}/api/v1/exchange/import`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ file: join(s.h.dir, 'no-such.opb') }),
    });
    expect(r.statusCode).toBeGreaterThanOrEqual(400);
    expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
    expect(((await r.body.json()) as { error: { code: string } }).error.code).toMatch(/\w+/);
  });

  it('then a caller that does not ask for the stream gets the plain JSON answer, as before', async () => {
    seedPendingReports(s.h.services.db, s.h.defaultVa, 10, TAG);
    const r = await s.h.api.post('/api/v1/exchange/export').send({ period: '2026-11' }).expect(200);
    expect(r.body.reports).toBe(10);
  });
});
