import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { ManualClock } from '../../src/shared/clock.js';
import { HEADER, REGISTRATION_DEVICE_ID, signRequest } from '../../src/device-api/signing.js';
import { generateKeyPair, privateKeyObject } from '../../src/shared/ed25519.js';
import { parseBatch, parseReport } from '../../src/usage/report-schema.js';
import type { SimulatedDevice } from '../../src/simulator/device-client.js';
import { hostileString, jsonText, jsonValue, malformedJson, type Json } from './hostile.js';
import { changes, snapshot } from './snapshot.js';
import { check, runs, timeout } from './run.js';

/*
 * The signed device API, fuzzed: unsigned, badly signed, stale, oversized and malformed
 * requests to each device route (and to paths that are none). Every one must be refused
 * without a 5xx or a write; the refusal counter, which counts them by design, is left out of
 * the comparison (see snapshot.ts).
 */

const MAX_BODY = 16 * 1024;
const NOW = Date.UTC(2026, 10, 15);
let h: Harness;
let d: SimulatedDevice;
const stranger = privateKeyObject(generateKeyPair().seed);

beforeAll(async () => {
  h = await startHarness({ clock: new ManualClock(NOW), config: { http: { maxBodyBytes: MAX_BODY } } });
  d = await h.registered();
  await d.sendReport(d.report(TAG, 1)).then((r) => expect(r.status).toBe(200));
});
afterAll(() => h?.close());

const ROUTES = ['POST /device/v1/register', 'POST /device/v1/report', 'POST /device/v1/reports', 'POST /device/v1/rekey', 'GET /device/v1/acks', 'GET /device/v1/collector'];

type Auth = 'none' | 'no-signature' | 'bad-timestamp' | 'stale' | 'unknown-device' | 'stranger-key' | 'other-body' | 'garbage-signature' | 'valid';
interface Case {
  route: string;
  path: string;
  query: string;
  auth: Auth;
  body: { kind: 'json'; value: Json } | { kind: 'malformed'; text: string } | { kind: 'oversized' } | { kind: 'none' };
  deviceHeader: string | null;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  route: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...ROUTES) }, { weight: 1, arbitrary: fc.constantFrom('POST /device/v1/x', 'GET /device/', 'PUT /device/v1/report', 'DELETE /device/v1/acks', 'POST /device/v1/report/', 'POST /device/v1/../v1/report') }),
  path: fc.constant(''),
  query: fc.oneof(fc.constant(''), fc.constantFrom('since=-1', 'since=abc', 'since=1e99', 'since=%zz', 'since=0&since=1', '__proto__=1')),
  auth: fc.constantFrom<Auth>('none', 'no-signature', 'bad-timestamp', 'stale', 'unknown-device', 'stranger-key', 'other-body', 'garbage-signature', 'valid'),
  body: fc.oneof(
    jsonValue.map((value) => ({ kind: 'json' as const, value })),
    malformedJson.map((text) => ({ kind: 'malformed' as const, text })),
    fc.constant({ kind: 'oversized' as const }),
    fc.constant({ kind: 'none' as const }),
  ),
  deviceHeader: fc.oneof(fc.constant(null), hostileString.filter((s) => /^[\x21-\x7e]{1,200}$/.test(s))),
}).map((c) => ({ ...c, path: c.route.split(' ')[1]! }));

const bodyText = (c: Case) =>
  c.body.kind === 'json' ? jsonText(c.body.value) : c.body.kind === 'malformed' ? c.body.text : c.body.kind === 'oversized' ? JSON.stringify({ reports: [], pad: 'x'.repeat(MAX_BODY) }) : '';

/** A request a device could rightly have stored: a valid signature over a valid report. Never sent. */
function couldStore(c: Case, text: string): boolean {
  if (c.auth !== 'valid' || c.query) return false;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  const limits = { maxReportsPerBatch: 100, maxMeasurementsPerReport: 100 };
  const parses = (f: () => unknown) => {
    try {
      f();
      return true;
    } catch {
      return false;
    }
  };
  if (c.route === 'POST /device/v1/report') return parses(() => parseReport(value, limits));
  if (c.route === 'POST /device/v1/reports') return parses(() => parseBatch(value, limits));
  return c.route.startsWith('GET ');
}

async function send(c: Case) {
  const [method] = c.route.split(' ') as [string];
  const path = c.path + (c.query ? '?' + c.query : '');
  const text = bodyText(c);
  const ts = String(Math.floor(NOW / 1000) - (c.auth === 'stale' ? 3600 * 24 : 0));
  const deviceId = c.deviceHeader ?? (c.route.endsWith('register') ? REGISTRATION_DEVICE_ID : c.auth === 'unknown-device' ? 'dev_nobody' : d.deviceId!);
  const key = c.auth === 'stranger-key' ? stranger : d.privateKey;
  const signed = signRequest(key, { method, path, collectorId: h.services.identity.collectorId, deviceId, timestamp: ts, body: c.auth === 'other-body' ? text + ' ' : text });
  let req = method === 'GET' ? h.api.get(path) : method === 'POST' ? h.api.post(path) : method === 'PUT' ? h.api.put(path) : h.api.delete(path);
  req = req.set('content-type', 'application/json');
  if (c.auth !== 'none') req = req.set(HEADER.device, deviceId);
  if (c.auth !== 'none' && c.auth !== 'no-signature') req = req.set(HEADER.timestamp, c.auth === 'bad-timestamp' ? 'yesterday' : ts);
  if (!['none', 'no-signature', 'bad-timestamp'].includes(c.auth)) req = req.set(HEADER.signature, c.auth === 'garbage-signature' ? '\u00ff\u00fe==' : signed);
  return method === 'GET' && !text ? req : req.send(text);
}

describe('the device API, fuzzed', () => {
  it('refuses unsigned, badly signed, oversized and malformed requests without a 5xx or a write', { timeout }, async () => {
    const property = fc.asyncProperty(caseArb, async (c) => {
      fc.pre(!couldStore(c, bodyText(c)));
      const before = snapshot(h.services.db);
      const res = await send(c);
      const what = `${JSON.stringify(c).slice(0, 500)} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
      expect(res.status, what).toBeLessThan(500);
      // A signed read of a device's ACKs may be answered (a repeated or unknown query key is ignored); the rest must be refused.
      const read = c.route === 'GET /device/v1/collector' || (c.route === 'GET /device/v1/acks' && c.auth === 'valid' && c.deviceHeader === null && c.body.kind !== 'oversized');
      if (!read) {
        expect(res.status, `${what}\nmust be refused`).toBeGreaterThanOrEqual(400);
      }
      if (res.status >= 400) {
        expect(res.headers['content-type'] ?? '', what).toMatch(/^application\/json/);
        expect(res.body?.error?.code, what).toMatch(/^[a-z][a-z0-9_]*$/);
      }
      expect(changes(before, snapshot(h.services.db)), `${what}\nwrote`).toEqual({});
      expect((await h.api.get('/healthz')).status, `${what}\nthe server stopped answering`).toBe(200);
    });
    await check('device API', property, runs(250, 10));
  });
});
