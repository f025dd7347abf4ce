import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

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
    expect(r.body).toEqual({ error: { code: 'not_found', message: expect.any(String), details: {}, requestId: r.headers['x-request-id'] } });
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
