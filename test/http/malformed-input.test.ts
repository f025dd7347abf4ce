import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const tokens = () => h.count('SELECT count(*) FROM tokens');

describe('malformed operator input gets a 400-class answer of its own, never a 500', () => {
  for (const path of ['/api/v1/devices/%E0%A4%A', '/api/v1/devices/%zz', '/api/v1/virtual-accounts/%']) {
    it(`when a path parameter holds a broken percent-escape (${path}), then 400 bad_path_encoding`, async () => {
      const r = await h.api.get(path);
      expect([r.status, r.body.error.code]).toEqual([400, 'bad_path_encoding']);
      if (path.startsWith('/api/v1/devices/')) {
        const w = await h.api.post(`${path}/deregister`).send({});
        expect([w.status, w.body.error.code]).toEqual([400, 'bad_path_encoding']);
      }
    });
  }

  it('when a body claims gzip (or br) but is not, then 400 bad_content_encoding and nothing is written', async () => {
    const before = tokens();
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const r = await h.api.post('/api/v1/tokens').set('content-type', 'application/json').set('content-encoding', encoding).send('not compressed at all');
      expect([r.status, r.body.error.code], encoding).toEqual([400, 'bad_content_encoding']);
    }
    expect(tokens()).toBe(before);
  });

  it('when a body is really gzip, then it is read; an unknown encoding is 415', async () => {
    // Exact bytes through undici: supertest re-serialises a Buffer sent as JSON.
    const body = gzipSync(JSON.stringify({ vaId: h.defaultVa, description: 'zipped', maxUses: 1, expiresInDays: 1 }));
    const r = await request(`${h.url}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body });
    expect(r.statusCode).toBe(201);
    await r.body.dump();
    const u = await h.api.post('/api/v1/tokens').set('content-type', 'application/json').set('content-encoding', 'zstd-ish').send('{}');
    expect([u.status, u.body.error.code]).toEqual([415, 'unsupported_content_encoding']);
  });
});

describe('when the store cannot take a write', () => {
  it('when the database is full, then an operator write is 503 storage_unavailable naming the cause (never internal), and nothing changes', async () => {
    // A full disk, as SQLite sees one: no page may be added.
    const pages = h.services.db.pragma('page_count', { simple: true }) as number;
    h.services.db.pragma(`max_page_count = ${pages}`);
    try {
      let r;
      let before = 0;
      for (let i = 0; i < 200; i++) {
        before = tokens();
        r = await h.api.post('/api/v1/tokens').send({ vaId: h.defaultVa, description: 'x'.repeat(400), maxUses: 1, expiresInDays: 1 });
        if (r.status !== 201) break;
      }
      expect([r!.status, r!.body.error.code]).toEqual([503, 'storage_unavailable']);
      expect(r!.body.error.message).toContain('full');
      expect(r!.headers['retry-after']).toBe('30');
      expect(tokens()).toBe(before); // the refused write left nothing
    } finally {
      h.services.db.pragma('max_page_count = 4294967294');
    }
  });
});
