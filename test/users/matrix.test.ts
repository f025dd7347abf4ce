import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { routes } from '../../src/http/routes.js';
import { routePath } from '../../src/http/operator-app.js';
import type { Route } from '../../src/http/route.js';
import type { Role } from '../../src/users/roles.js';
import { closedPort } from '../helpers/ports.js';
import { admit } from '../../src/users/authorize.js';

/**
 * Every route of the tables, for every kind of caller: the status each gets is what the
 * route's permission and scope declare. Walks the table itself, so a new route is in the
 * matrix the day it is declared.
 */
let h: Harness;
let vaA: string;
let vaB: string;
const fixtures: Record<'device' | 'polled' | 'token', string> = { device: '', polled: '', token: '' };
const bearer: Record<string, string> = {};

const PASSWORD = 'correct horse battery staple';

async function user(name: string, roles: { role: Role; vaId?: string }[]): Promise<string> {
  const u = await h.services.users.add({ name, password: PASSWORD, roles }, 'test');
  return h.services.users.createToken(u.id, { name: 'matrix', expiresInDays: 1 }, 'test').secret;
}

beforeAll(async () => {
  h = await startHarness();
  vaA = h.defaultVa;
  vaB = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Other' }).expect(201)).body.id;
  const d = await h.registered(undefined, vaA);
  await d.sendReport(d.report(TAG, 1));
  fixtures.device = d.deviceId!;
  fixtures.token = (await h.api.post('/api/v1/tokens').send({ vaId: vaA, description: 'matrix' }).expect(201)).body.id;
  // A device address where nothing listens, on loopback: a poll or a test fails at once.
  fixtures.polled = (await h.api.post('/api/v1/cisco/devices').send({ name: 'sw-a', host: '127.0.0.1', port: await closedPort(), username: 'u', password: 'p', vaId: vaA }).expect(201)).body.id;
  // Users come last: until the first one exists, loopback alone is admin.
  bearer.admin = await user('ann', [{ role: 'admin' }]);
  bearer.operator = await user('otto', [{ role: 'operator' }]);
  bearer.auditor = await user('aude', [{ role: 'auditor' }]);
  bearer.vaAdmin = await user('vera', [{ role: 'va-admin', vaId: vaA }]);
  bearer.vaViewer = await user('vic', [{ role: 'va-viewer', vaId: vaA }]);
  bearer.otherVaAdmin = await user('olga', [{ role: 'va-admin', vaId: vaB }]);
  bearer.expired = await user('eve', [{ role: 'admin' }]);
  h.services.db.prepare("UPDATE api_tokens SET expires_at = ? WHERE user_id = (SELECT id FROM users WHERE name = 'eve')").run(Date.now() - 1000);
  bearer.revoked = await user('rex', [{ role: 'admin' }]);
  const rex = h.services.users.get('rex');
  h.services.users.revokeToken(h.services.users.tokens(rex.id)[0]!.id, rex.id, 'test');
});
afterAll(() => h.close());

/** A request to the route about VA A's things: its path filled with A's fixtures. */
function requestFor(r: Route): { path: string; body: unknown } {
  const scope = r.scope ?? [];
  const id = scope.includes('va-param') ? vaA : scope.includes('device-param') ? fixtures.device : scope.includes('polled-param') ? fixtures.polled : scope.includes('token-param') ? fixtures.token : 'x';
  let path = routePath(r).replace(':id', encodeURIComponent(id)).replace(/:(\w+)/g, 'x');
  if (scope.includes('va-query')) path += `?vaId=${vaA}`;
  return { path, body: scope.includes('va-body') ? { vaId: vaA } : {} };
}

type Caller = 'admin' | 'operator' | 'auditor' | 'vaAdmin' | 'vaViewer' | 'otherVaAdmin' | 'expired' | 'revoked' | 'anonymous';

/** What the declarations say a caller gets: 'ok' (anything but 401/403), 401 or 403. */
function expected(r: Route, c: Caller): 'ok' | 401 | 403 {
  if (c === 'expired' || c === 'revoked') return 401; // a token that does not hold is refused whatever the route
  if (r.permission === 'public') return 'ok';
  // The matrix calls over loopback: a caller without credentials reads /metrics there.
  if (c === 'anonymous') return r.permission === 'read-or-loopback' ? 'ok' : 401;
  if (r.permission === 'self' || c === 'admin') return 'ok';
  const scoped = (r.scope ?? []).length > 0;
  const list = r.scope?.includes('list') && r.scope.length === 1;
  switch (c) {
    case 'operator':
      return r.permission === 'admin' ? 403 : 'ok';
    case 'auditor':
      return r.permission === 'read' || r.permission === 'read-or-loopback' ? 'ok' : 403;
    case 'vaAdmin':
      return r.permission !== 'admin' && scoped ? 'ok' : 403;
    case 'vaViewer':
      return (r.permission === 'read' || r.permission === 'read-or-loopback') && scoped ? 'ok' : 403;
    case 'otherVaAdmin':
      // Its own VA's lists, filtered; nothing of VA A.
      return r.permission !== 'admin' && list ? 'ok' : 403;
  }
}

describe('the authorization matrix', () => {
  // Those refused first, those allowed last: a delete one of them is allowed to make comes after every check of the refusals.
  const callers: Caller[] = ['anonymous', 'revoked', 'expired', 'otherVaAdmin', 'vaViewer', 'auditor', 'vaAdmin', 'operator', 'admin'];
  it('when every caller calls every route of the tables, then each gets what the route declares', async () => {
    const wrong: string[] = [];
    // Deletes last: the fixtures they remove are the other routes' subjects.
    for (const r of [...routes].sort((a, b) => Number(a.method === 'delete') - Number(b.method === 'delete'))) {
      const { path, body } = requestFor(r);
      for (const c of callers) {
        let q = h.api[r.method](path);
        if (c !== 'anonymous') q = q.set('authorization', `Bearer ${bearer[c]}`);
        if (r.method !== 'get') {
          q = r.bodyType === 'text' ? q.set('content-type', 'application/xml').send('<x/>')
            : r.bodyType === 'bytes' ? q.set('content-type', 'application/octet-stream').send(Buffer.from('not a bundle'))
            : q.send(body as object);
        }
        const res = await q;
        const want = expected(r, c);
        const got = res.status === 401 || res.status === 403 ? res.status : 'ok';
        if (got !== want || res.status >= 500) wrong.push(`${c} ${r.method.toUpperCase()} ${path}: expected ${want}, got ${res.status} ${JSON.stringify(res.body?.error?.code ?? '')}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('when users exist, then /metrics answers a loopback scrape without credentials, judges credentials sent as read, and refuses an unauthenticated caller from elsewhere', async () => {
    expect(h.services.users.any()).toBe(true);
    const scrape = await h.api.get('/metrics').expect(200);
    expect(scrape.text).toContain('# TYPE outpost_reports_total counter');
    // Credentials sent are judged as credentials, wherever they come from.
    await h.api.get('/metrics').set('authorization', `Bearer ${bearer.revoked}`).expect(401);
    expect((await h.api.get('/metrics').set('authorization', `Bearer ${bearer.vaViewer}`).expect(403)).body.error.message).toContain('needs the read permission on every virtual account');
    await h.api.get('/metrics').set('authorization', `Bearer ${bearer.auditor}`).expect(200);
    // Only /metrics: the rest of the API still wants a token on loopback.
    await h.api.get('/api/v1/devices').expect(401);
    expect(routes.filter((r) => r.permission === 'read-or-loopback').map(routePath)).toEqual(['/metrics']);
    // Over HTTPS from another address (which the tests cannot send from 127.0.0.1), no credentials are no way in.
    const metrics = routes.find((r) => routePath(r) === '/metrics')!;
    expect(() => admit(metrics, null, { loopback: false })).toThrow(/this collector has users: send an API token/);
    expect(admit(metrics, null, { loopback: true })).toEqual({ global: true });
  });

  it("when a VA-scoped user lists, then it sees its own VA's things only", async () => {
    const as = (c: Caller) => (p: string) => h.api.get(p).set('authorization', `Bearer ${bearer[c]}`);
    expect((await as('vaViewer')('/api/v1/virtual-accounts').expect(200)).body.items.map((v: { id: string }) => v.id)).toEqual([vaA]);
    expect((await as('otherVaAdmin')('/api/v1/virtual-accounts').expect(200)).body.items.map((v: { id: string }) => v.id)).toEqual([vaB]);
    expect((await as('otherVaAdmin')('/api/v1/devices').expect(200)).body.items).toEqual([]);
    expect((await as('vaViewer')('/api/v1/devices').expect(200)).body.items.map((d: { id: string }) => d.id)).toEqual([fixtures.device]);
    expect((await as('otherVaAdmin')('/api/v1/compliance').expect(200)).body.items.map((c: { vaId: string }) => c.vaId)).toEqual([vaB]);
    await as('otherVaAdmin')(`/api/v1/devices?vaId=${vaA}`).expect(403);
    // Alerts: those about its VA only (their VA read from the alert's details).
    h.services.alerts.raise('shortage', { subject: `${vaA}/t`, severity: 'warning', message: 'A short', details: { vaId: vaA } });
    h.services.alerts.raise('shortage', { subject: `${vaB}/t`, severity: 'warning', message: 'B short', details: { vaId: vaB } });
    const alertsOf = async (c: Caller) => ((await as(c)('/api/v1/alerts?kind=shortage').expect(200)).body.items as { message: string }[]).map((a) => a.message).sort();
    expect(await alertsOf('vaViewer')).toEqual(['A short']);
    expect(await alertsOf('otherVaAdmin')).toEqual(['B short']);
    expect(await alertsOf('auditor')).toEqual(['A short', 'B short']);
    // Roles on two VAs: lists hold both, without naming either.
    const both = await user('bea', [{ role: 'va-viewer', vaId: vaA }, { role: 'va-viewer', vaId: vaB }]);
    const asBoth = (p: string) => h.api.get(p).set('authorization', `Bearer ${both}`);
    expect((await asBoth('/api/v1/devices').expect(200)).body.items.map((d: { id: string }) => d.id)).toEqual([fixtures.device]);
    expect((await asBoth('/api/v1/tokens').expect(200)).body.items.every((t: { vaId: string }) => t.vaId === vaA || t.vaId === vaB)).toBe(true);
    expect((await asBoth('/api/v1/events?type=va.*').expect(200)).body.items.every((e: { vaId: string | null }) => e.vaId === vaA || e.vaId === vaB)).toBe(true);
    // A VA it cannot see is answered as not permitted, whether or not it exists.
    const missing = await as('otherVaAdmin')('/api/v1/virtual-accounts/no-such-va');
    expect(missing.status).toBe(403);
  });

  it('when an operator token is sent to the device API, or a device signature to the operator API, then neither is taken for the other', async () => {
    const res = await h.api.post('/device/v1/report').set('authorization', `Bearer ${bearer.admin}`).set('content-type', 'application/json').send('{}');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('device_missing');
    const signed = await h.api.get('/api/v1/devices').set('x-outpost-device', fixtures.device).set('x-outpost-signature', 'AAAA').set('x-outpost-timestamp', String(Math.floor(Date.now() / 1000)));
    expect(signed.status).toBe(401);
  });

  it('when a token is made, then its secret is shown once and only a hash is kept; a token asks for no more than its user holds', async () => {
    const u = h.services.users.get('vera');
    const t = h.services.users.createToken(u.id, { name: 'viewer only', expiresInDays: 1, roles: [{ role: 'va-viewer', vaId: vaA }] }, 'test');
    const stored = h.services.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(t.id) as Record<string, unknown>;
    expect(JSON.stringify(stored)).not.toContain(t.secret.split('.')[1]);
    const whoami = (await h.api.get('/api/v1/auth/whoami').set('authorization', `Bearer ${t.secret}`).expect(200)).body;
    expect(whoami.roles).toEqual([{ role: 'va-viewer', vaId: vaA }]);
    await h.api.post('/api/v1/tokens').set('authorization', `Bearer ${t.secret}`).send({ vaId: vaA, description: 'x' }).expect(403);
    expect(() => h.services.users.createToken(u.id, { name: 'more', expiresInDays: 1, roles: [{ role: 'operator' }] }, 'test')).toThrow(/does not hold operator/);
  });
});
