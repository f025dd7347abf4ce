import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { createLogger, resolveFormat } from '../../src/shared/logger.js';
import { DeviceRequestSummary } from '../../src/device-api/request-summary.js';

/** The lines a real winston transport writes, each parsed: a line that is not JSON fails the test here. */
function sink() {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      raw.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { raw, stream, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

let h: Harness;
let out: ReturnType<typeof sink>;
beforeEach(async () => {
  h = await startHarness();
  out = sink();
  // A second transport on the collector's own logger, through the same JSON format.
  h.services.logger.add(new winston.transports.Stream({ stream: out.stream }));
});
afterEach(() => h.close());

const operatorLines = () => out.lines().filter((l) => l.message === 'operator request');
const settle = () => new Promise((r) => setImmediate(r));

describe('operator requests', () => {
  it('get an id, echoed in the X-Request-Id header and in the one log line each writes', async () => {
    const a = await h.api.get('/api/v1/devices');
    const b = await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}`);
    const c = await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'x', maxUses: 1, expiresInDays: 1 });
    await settle();
    const ids = [a, b, c].map((r) => r.headers['x-request-id'] as string);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(ids).size).toBe(3);
    const lines = operatorLines();
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.requestId)).toEqual(ids);
    expect(lines[0]).toMatchObject({ level: 'info', method: 'GET', route: '/api/v1/devices', status: 200, actor: 'operator', origin: '127.0.0.1' });
    // The route pattern, not the path: ids stay out of the log.
    expect(lines[1]).toMatchObject({ method: 'GET', route: '/api/v1/virtual-accounts/:id', status: 200 });
    expect(lines[2]).toMatchObject({ method: 'POST', route: '/api/v1/tokens', status: 201 });
    for (const l of lines) expect(typeof l.ms).toBe('number');
  });

  it('keep a short plain incoming X-Request-Id, and replace one that is long, spaced or shaped like a token', async () => {
    const kept = await h.api.get('/api/v1/devices').set('X-Request-Id', 'edge-7f3a.12:9');
    expect(kept.headers['x-request-id']).toBe('edge-7f3a.12:9');
    for (const bad of ['x'.repeat(65), 'two words', 'opt_tok_abc.secretsecret', 'a\tb', '-leading']) {
      const r = await h.api.get('/api/v1/devices').set('X-Request-Id', bad);
      expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{24}$/);
    }
    await settle();
    const ids = operatorLines().map((l) => l.requestId);
    expect(ids[0]).toBe('edge-7f3a.12:9');
    expect(ids).toHaveLength(6);
  });

  it('name the request id in an error body, and log the refused request with its route and status', async () => {
    const r = await h.api.get('/api/v1/devices/no-such-device');
    expect(r.status).toBe(404);
    expect(r.body.error.requestId).toBe(r.headers['x-request-id']);
    const none = await h.api.get('/api/v1/no/such/route');
    expect(none.body.error).toMatchObject({ code: 'not_found', requestId: none.headers['x-request-id'] });
    await settle();
    expect(operatorLines()).toMatchObject([
      { requestId: r.headers['x-request-id'], route: '/api/v1/devices/:id', status: 404 },
      { requestId: none.headers['x-request-id'], route: null, status: 404 },
    ]);
  });

  it('name the token (never its secret) as the actor, and log no header, cookie or query string', async () => {
    const u = await h.services.users.add({ name: 'alice', password: 'correct horse battery staple', roles: [{ role: 'admin' }] }, 'test');
    const t = h.services.users.createToken(u.id, { name: 'ci', expiresInDays: 1 }, 'test');
    const r = await h.api.get('/api/v1/devices?status=active&token=query-secret-value').set('Authorization', `Bearer ${t.secret}`).set('Cookie', 'outpost_session=cookie-secret-value');
    // Refused for the unknown query field, after the token was accepted.
    expect(r.status).toBe(400);
    await settle();
    const [line] = operatorLines();
    expect(line).toMatchObject({ actor: `token:${t.id} (user:alice)`, route: '/api/v1/devices', status: 400 });
    const text = out.raw.join('\n');
    for (const s of [t.secret, 'query-secret-value', 'cookie-secret-value', 'Bearer']) expect(text).not.toContain(s);
  });
});

describe('device requests', () => {
  it('write no line each: N requests make one summary line with count N, report outcomes, latency and devices', async () => {
    const d1 = await h.registered();
    const d2 = await h.registered();
    const rep = d1.report(TAG, 1);
    expect((await d1.sendReport(rep)).body.status).toBe('accepted');
    expect((await d1.sendReport(rep)).body.status).toBe('duplicate');
    expect((await d2.sendReport(d2.report(TAG, 2))).body.status).toBe('accepted');
    // A refused one: signed for another collector's clock.
    const stale = await d2.send('POST', '/device/v1/report', JSON.stringify(d2.report(TAG, 1)), d2.deviceId, Math.floor(Date.now() / 1000) - 3600);
    expect(stale.status).toBe(401);
    await settle();
    const before = out.lines();
    expect(before.filter((l) => String(l.message).startsWith('device') || JSON.stringify(l).includes('/device/'))).toEqual([]);
    h.services.deviceRequests.flush();
    const summaries = out.lines().filter((l) => l.message === 'device requests');
    expect(summaries).toHaveLength(1);
    // Two registrations (device API) and four reports.
    expect(summaries[0]).toMatchObject({
      requests: 6,
      status: { '2xx': 5, '4xx': 1 },
      reports: { accepted: 2, duplicate: 1, refused: { timestamp_stale: 1 } },
      devices: 2,
    });
    expect(summaries[0]!.p99Ms).toBeGreaterThanOrEqual(summaries[0]!.p50Ms as number);
    // A quiet interval writes nothing.
    h.services.deviceRequests.flush();
    expect(out.lines().filter((l) => l.message === 'device requests')).toHaveLength(1);
  });

  it('are summarized on the interval set by log.deviceSummarySeconds, only when there was traffic', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const s = sink();
      const summary = new DeviceRequestSummary(createLogger('info', { format: 'json', stream: s.stream }));
      summary.start(60);
      vi.advanceTimersByTime(60_000);
      summary.record(200, 3, 'dev-1');
      summary.record(503, 9, 'dev-2');
      vi.advanceTimersByTime(59_000);
      expect(s.raw).toHaveLength(0);
      vi.advanceTimersByTime(1_000);
      vi.advanceTimersByTime(120_000);
      expect(s.lines()).toMatchObject([{ message: 'device requests', requests: 2, status: { '2xx': 1, '5xx': 1 }, devices: 2 }]);
      summary.record(200, 1, 'dev-1');
      summary.stop();
      expect(s.lines()).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the log format', () => {
  it('is JSON under systemd, in production or into a pipe, text on a terminal, or as configured', () => {
    expect(resolveFormat('auto', { JOURNAL_STREAM: '8:12345' }, true)).toBe('json');
    expect(resolveFormat('auto', { INVOCATION_ID: 'abc' }, true)).toBe('json');
    expect(resolveFormat('auto', { NODE_ENV: 'production' }, true)).toBe('json');
    expect(resolveFormat('auto', {}, false)).toBe('json');
    expect(resolveFormat('auto', {}, true)).toBe('text');
    expect(resolveFormat('text', { JOURNAL_STREAM: '8:1' }, false)).toBe('text');
    expect(resolveFormat('json', {}, true)).toBe('json');
  });

  it('writes one JSON object per line, or one readable text line per entry', () => {
    const j = sink();
    createLogger('info', { format: 'json', stream: j.stream }).info('operator request', { requestId: 'r1', status: 200 });
    expect(j.lines()).toMatchObject([{ level: 'info', message: 'operator request', requestId: 'r1', status: 200 }]);
    const t = sink();
    createLogger('info', { format: 'text', stream: t.stream }).warn('two\nlines', { route: '/api/v1/devices', why: 'a b' });
    expect(t.raw).toHaveLength(1);
    expect(t.raw[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ warn {2}two lines route=\/api\/v1\/devices why="a b"$/);
  });

  it('log.format and log.deviceSummarySeconds are checked like every setting', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    expect(loadConfig({ env: { OUTPOST_LOG_FORMAT: 'text' } }).log.format).toBe('text');
    expect(() => loadConfig({ env: { OUTPOST_LOG_FORMAT: 'xml' } })).toThrow(/log\.format/);
    expect(() => loadConfig({ env: { OUTPOST_LOG_DEVICE_SUMMARY_SECONDS: '0' } })).toThrow(/log\.deviceSummarySeconds/);
  });
});
