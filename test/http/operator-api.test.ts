import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { routes } from '../../src/http/routes.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('the operator API guards', () => {
  it('when the Host header names anything but loopback (DNS rebinding), then 403', async () => {
    const r = await h.api.get('/api/v1/virtual-accounts').set('host', 'evil.example:8182');
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('bad_host');
    expect((await h.api.get('/api/v1/virtual-accounts').set('host', 'localhost:8182')).status).toBe(200);
    expect((await h.api.get('/api/v1/virtual-accounts').set('host', '[::1]:8182')).status).toBe(200);
  });

  it('when a route does not exist, then 404 in the one error shape', async () => {
    const r = await h.api.get('/api/v1/nothing');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: { code: 'not_found', message: expect.any(String), details: {} } });
  });

  it('when a body is not JSON, then 400 malformed_json, not a 500', async () => {
    const r = await h.api.post('/api/v1/virtual-accounts').set('content-type', 'application/json').send('{"name":');
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('malformed_json');
  });

  it('when a query has an unknown parameter, then it is named', async () => {
    const r = await h.api.get('/api/v1/events?colour=blue');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('colour');
  });
});

describe('the route table', () => {
  it('then every route appears in the OpenAPI document with its permission', async () => {
    const doc = (await h.api.get('/api/v1/openapi.json')).body;
    for (const r of routes) {
      const op = doc.paths['/api/v1' + r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op['x-permission']).toBe(r.permission);
    }
  });

  it('then every route is served (none falls through to 404)', async () => {
    for (const r of routes) {
      const path = '/api/v1' + r.path.replace(/:(\w+)/g, 'x');
      const res = await h.api[r.method](path);
      expect(res.body?.error?.message ?? '', `${r.method} ${path}`).not.toMatch(/^no route/);
    }
  });
});
