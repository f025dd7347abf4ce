import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { routes } from '../../src/http/routes.js';
import { createOperatorApp, routePath } from '../../src/http/operator-app.js';
import { deviceApiRoutes } from '../../src/device-api/routes.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const concrete = (path: string) => path.replace(/:(\w+)/g, 'x');
const generic404 = (body: { error?: { code?: string; message?: string } }) => body.error?.code === 'not_found' && /^no (device )?route /.test(body.error.message ?? '');

describe('everything served is declared in a table', () => {
  it('when the operator app is built, then its routes are exactly the route table', () => {
    const app = createOperatorApp(h.services, { transport: 'socket', version: 'test' }) as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } };
    const served = app.router.stack
      .filter((l) => l.route)
      .flatMap((l) => Object.keys(l.route!.methods).filter((m) => m !== '_all').map((m) => `${m.toUpperCase()} ${l.route!.path}`))
      .sort();
    const declared = routes.map((r) => `${r.method.toUpperCase()} ${routePath(r)}`).sort();
    expect(served).toEqual(declared);
    expect(new Set(declared).size).toBe(declared.length);
  });

  it('when each declared route is called, then it answers (whatever it decides), and nothing undeclared does', async () => {
    for (const r of routes) {
      const res = await h.api[r.method](concrete(routePath(r))).set('content-type', r.bodyType === 'text' ? 'application/xml' : 'application/json').send(r.method === 'get' ? undefined : r.bodyType === 'text' ? '<x/>' : '{}');
      expect(generic404(res.body), `${r.method.toUpperCase()} ${routePath(r)} answered ${res.status} ${JSON.stringify(res.body)}`).toBe(false);
      expect(res.status, `${r.method.toUpperCase()} ${routePath(r)}`).toBeLessThan(500);
    }
    for (const [method, path] of [['get', '/api/v1/nothing'], ['post', '/healthz'], ['get', '/api/v2/identity'], ['delete', '/api/v1/identity'], ['get', '/device/v1/nothing'], ['get', '/device/v1/report'], ['post', '/device/v1/collector']] as const) {
      const res = await h.api[method](path);
      expect(res.status, `${method.toUpperCase()} ${path}`).toBe(404);
    }
  });

  it('when each device route of the table is called, then the device API serves it, refusing an unsigned request without reading a body', async () => {
    for (const r of deviceApiRoutes) {
      const res = await (r.method === 'GET' ? h.api.get(r.path) : h.api.post(r.path).set('content-type', 'application/json').send('{}'));
      expect(generic404(res.body), `${r.method} ${r.path}`).toBe(false);
      expect(res.status).toBe(r.auth === 'public' ? 200 : 401);
    }
  });

  it('when the API describes itself, then the OpenAPI document names every route with its permission', async () => {
    const doc = (await h.api.get('/api/v1/openapi.json').expect(200)).body as { paths: Record<string, Record<string, { 'x-permission': string }>> };
    for (const r of routes) {
      const path = routePath(r).replace(/:(\w+)/g, '{$1}');
      expect(doc.paths[path]?.[r.method]?.['x-permission'], `${r.method} ${path}`).toBe(r.permission);
    }
  });
});
