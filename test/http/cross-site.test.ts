import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { routes } from '../../src/http/routes.js';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';

/** A RUM file claiming licenses for a new device (what the attack once imported). */
const rumFile = (serial: string, count: number) =>
  smartLicense(rumElement({ pid: 'C9300-48P', serial, reportId: 1, tag: TAG, measurements: [{ start: 1_767_000_000, end: 1_767_003_600, count }] }));

let h: Harness;
let ids: Record<string, string>;
beforeEach(async () => {
  h = await startHarness({ config: { http: { port: 0, allowedOrigins: ['https://console.example'] } } });
  const d = await h.registered('XSITE1');
  await d.sendReport(d.report(TAG, 3));
  const lab = await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' });
  const token = await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 't', maxUses: 5, expiresInDays: 5 });
  ids = { device: d.deviceId!, va: lab.body.id, token: token.body.id };
});
afterEach(() => h.close());

/** Every row of every table, and every file the collector keeps: what "nothing changed" means. */
function fingerprint(): string {
  const hash = createHash('sha256');
  const tables = h.services.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
  for (const { name } of tables) hash.update(name + JSON.stringify(h.services.db.prepare(`SELECT * FROM "${name}"`).all()));
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (!/outpost\.db(-wal|-shm|\.lock)?$/.test(f)) hash.update(p + readFileSync(p).toString('base64'));
    }
  };
  walk(h.dir);
  return hash.digest('hex');
}

const changing = routes.filter((r) => r.method !== 'get');

function send(r: (typeof routes)[number], headers: Record<string, string>) {
  const path = '/api/v1' + r.path.replace(/:(\w+)/g, (_m, p: string) => (p === 'id' && r.path.startsWith('/devices') ? ids.device! : p === 'id' && r.path.startsWith('/tokens') ? ids.token! : ids.va!));
  const req = h.api[r.method](r.path === '/usage/rum' ? `${path}?vaId=${h.defaultVa}` : path);
  for (const [k, v] of Object.entries(headers)) req.set(k, v);
  if (r.bodyType === 'text') return req.set('content-type', headers['content-type'] ?? 'application/xml').send(rumFile('RUMX1', 999));
  return req.set('content-type', headers['content-type'] ?? 'application/json').send(JSON.stringify({ vaId: ids.va, name: 'Pwned', description: 'x', maxUses: 1, expiresInDays: 1 }));
}

describe('cross-site requests to the operator API', () => {
  const attacks: [string, Record<string, string>][] = [
    ['a page on another site', { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }],
    ['a page on another port of 127.0.0.1', { origin: 'http://127.0.0.1:1', 'sec-fetch-site': 'same-site' }],
    ['a sandboxed frame or file page (Origin: null)', { origin: 'null' }],
    ['a browser that sends only Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }],
  ];
  for (const [who, headers] of attacks) {
    it(`when ${who} sends any state-changing route of the table, then each is refused (403) and nothing changes`, async () => {
      const before = fingerprint();
      expect(changing.length).toBeGreaterThan(10);
      for (const r of changing) {
        const res = await send(r, headers);
        expect([res.status, res.body?.error?.code], `${r.method} ${r.path}`).toEqual([403, 'cross_site_request']);
      }
      expect(fingerprint()).toBe(before);
    });
  }

  it('when a page posts a "simple" text/plain body (no preflight), then JSON and RUM routes refuse it (415) and nothing changes', async () => {
    const before = fingerprint();
    for (const r of changing) {
      const res = await send(r, { 'content-type': 'text/plain' });
      expect([res.status, res.body?.error?.code], `${r.method} ${r.path}`).toEqual([415, 'unsupported_media_type']);
    }
    expect(fingerprint()).toBe(before);
  });

  it('when a JSON body claims a charset other than UTF-8, then it is refused (415) before it is decoded, found by the route fuzz', async () => {
    // seed 838922191: POST /alerts/evaluate with "application/json; charset=utf-7" was decoded and answered 200.
    const r = await h.api.post('/api/v1/alerts/evaluate').set('content-type', 'application/json; charset=utf-7').send('[]');
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('unsupported_charset');
    await h.api.post('/api/v1/alerts/evaluate').set('content-type', 'application/json; charset=UTF-8').send('{}').expect(200);
  });

  it('when the attacks that once worked are replayed, then the key is not rotated, no bundle is written, no device is created', async () => {
    const key = h.services.identity.publicKeyB64;
    const evil = { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' };
    expect((await h.api.post('/api/v1/exchange/rotate-key').set(evil).set('content-type', 'text/plain').send('{}')).status).toBe(403);
    expect((await h.api.post('/api/v1/exchange/export').set(evil).set('content-type', 'text/plain').send('')).status).toBe(403);
    const rum = await h.api.post(`/api/v1/usage/rum?vaId=Default`).set(evil).set('content-type', 'text/plain').send(rumFile('RUMX2', 1998));
    expect(rum.status).toBe(403);
    expect((await h.api.get('/api/v1/exchange/keys')).body.collector.publicKey).toBe(key);
    expect(readdirSync(join(h.config.exchange.bundleDir, 'outbox'))).toEqual([]);
    expect(h.count("SELECT count(*) FROM devices WHERE udi_serial = 'RUMX2'")).toBe(0);
  });

  it('when the collector is its own origin, a configured origin, or a client with no Origin (CLI, curl), then changes go through', async () => {
    const port = new URL(h.url).port;
    const body = { vaId: h.defaultVa, description: 'ok', maxUses: 1, expiresInDays: 1 };
    const own = await h.api.post('/api/v1/tokens').set('origin', `http://127.0.0.1:${port}`).set('sec-fetch-site', 'same-origin').send(body);
    expect(own.status).toBe(201);
    const listed = await h.api.post('/api/v1/tokens').set('origin', 'https://console.example').send(body);
    expect(listed.status).toBe(201);
    const typed = await h.api.post('/api/v1/tokens').set('sec-fetch-site', 'none').send(body);
    expect(typed.status).toBe(201);
    const curl = await h.api.post('/api/v1/tokens').send(body);
    expect(curl.status).toBe(201);
    const rum = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'text/xml').send(rumFile('RUMOK', 1));
    expect(rum.status).toBe(200);
    // Reads are never refused: a page cannot read the answer without CORS, which is never granted.
    expect((await h.api.get('/api/v1/compliance').set('origin', 'http://evil.example')).status).toBe(200);
  });
});
