import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { findLeaks, recordSecret } from '../helpers/secrets.js';
import { udpSyslog, until, webhookReceiver } from './receivers.js';

const GIVEN_SECRET = 'patch-hook-secret-0123456789abcdef';
recordSecret('webhook secret', GIVEN_SECRET);

let h: Harness;
let key = GIVEN_SECRET;
const hook = webhookReceiver(() => key);
let hookUrl: string;
let keyFile: string;
let adminToken: string;
let operatorToken: string;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const admin = {
  get: (p: string) => h.api.get(`/api/v1${p}`).set(as(adminToken)),
  post: (p: string, b: object) => h.api.post(`/api/v1${p}`).set(as(adminToken)).send(b),
  patch: (p: string, b: object) => h.api.patch(`/api/v1${p}`).set(as(adminToken)).send(b),
  delete: (p: string) => h.api.delete(`/api/v1${p}`).set(as(adminToken)),
};

let n = 0;
/** Each alert about a subject of its own, so that none is folded into another. */
const raise = (severity: 'info' | 'warning' | 'critical', kind: 'shortage' | 'device_silent' = 'shortage') => {
  const subject = `patch-${++n}`;
  h.services.alerts.raise(kind, { subject, severity, message: `${subject} is short`, details: { vaId: h.defaultVa, inUse: 5, owned: 2 } });
  return subject;
};
const delivered = () => hook.hooks.map((x) => (JSON.parse(x.body) as { alert: { subject: string } }).alert.subject);
const sinkEvents = async () => (await admin.get('/events?type=sink.updated')).body.items as { subject: string; details: Record<string, unknown> }[];

beforeAll(async () => {
  const dir = tempDir('sink-patch');
  keyFile = join(dir, 'hook.secret');
  writeFileSync(keyFile, GIVEN_SECRET + '\n');
  chmodSync(keyFile, 0o600);
  hookUrl = `http://127.0.0.1:${await hook.listen()}/outpost`;
  h = await startHarness({ config: { notifications: { retrySeconds: [0.2], pollSeconds: 0.1, timeoutSeconds: 5, coalesceMinutes: 0 } } });
  h.services.notify.start();
  const root = await h.services.users.add({ name: 'root', password: 'correct-horse-battery', roles: [{ role: 'admin' }] }, 'test');
  adminToken = h.services.users.createToken(root.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
  const op = await h.services.users.add({ name: 'olga', password: 'correct-horse-staple', roles: [{ role: 'operator' }] }, 'test');
  operatorToken = h.services.users.createToken(op.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
});
afterAll(async () => {
  await h.services.notify.stop();
  await h.close();
  await hook.close();
});

describe('PATCH /notifications/sinks/:id', () => {
  it('when an admin narrows a webhook sink to critical, then the next warning is not delivered and the next critical is, and the change is an event', async () => {
    const added = await admin.post('/notifications/sinks', { kind: 'webhook', name: 'hook', webhook: { url: hookUrl, hmacKeyFile: keyFile } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ enabled: true, filter: { severities: ['info', 'warning', 'critical'] } });
    expect(added.body.secret).toBeUndefined();
    const id = added.body.id as string;
    const first = raise('warning');
    await until('the first warning', () => delivered().includes(first));

    const changed = await admin.patch(`/notifications/sinks/${id}`, { filter: { severities: ['critical'] } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, name: 'hook', enabled: true, filter: { severities: ['critical'], vaIds: null, kinds: null }, webhook: { url: hookUrl, hmacKeyFile: keyFile } });
    const warning = raise('warning');
    const critical = raise('critical');
    await until('the critical alert', () => delivered().includes(critical));
    await h.services.notify.delivery.idle();
    expect(delivered()).not.toContain(warning);
    expect(hook.hooks.every((x) => x.verified)).toBe(true);

    const [ev] = await sinkEvents();
    expect(ev).toMatchObject({ subject: id, details: { name: 'hook', changed: ['filter.severities'], to: new URL(hookUrl).origin, enabled: true } });
  });

  it('when a sink is turned off, then it is given no alert until it is turned on again; its kinds filter narrows too', async () => {
    const id = (await admin.get('/notifications/sinks')).body.items[0].id as string;
    expect((await admin.patch(`/notifications/sinks/${id}`, { enabled: false })).body).toMatchObject({ enabled: false });
    const off = raise('critical');
    expect(h.count('SELECT COUNT(*) AS n FROM notifications WHERE target = ?', id)).toBe(h.count('SELECT COUNT(*) AS n FROM notifications WHERE target = ? AND subject != ?', id, off));
    const on = await admin.patch(`/notifications/sinks/${id}`, { enabled: true, filter: { kinds: ['device_silent'] } });
    expect(on.body).toMatchObject({ enabled: true, filter: { severities: ['critical'], kinds: ['device_silent'] } });
    const shortage = raise('critical', 'shortage');
    const silent = raise('critical', 'device_silent');
    await until('the device_silent alert', () => delivered().includes(silent));
    await h.services.notify.delivery.idle();
    expect(delivered()).not.toContain(off);
    expect(delivered()).not.toContain(shortage);
    expect((await sinkEvents()).map((e) => e.details.changed)).toContainEqual(['enabled', 'filter.kinds']);
  });

  it('when a change is wrong in any way, then it is refused with 400 naming what is wrong, and nothing changes', async () => {
    const before = (await admin.get('/notifications/sinks')).body.items[0];
    const events = (await sinkEvents()).length;
    const cases: [object, RegExp][] = [
      [{ colour: 'red' }, /colour/],
      [{ filter: { severities: ['critical'], colour: 'red' } }, /filter.*colour/],
      [{ kind: 'syslog' }, /kind/],
      [{ webhook: { url: hookUrl, secret: 'typed-in' } }, /webhook.*secret/],
      [{ filter: { severities: ['loud'] } }, /^body: filter\.severities\[0\]: /],
      [{ filter: { severities: [] } }, /filter\.severities: at least one severity/],
      [{ filter: { vaIds: ['no-such-va'] } }, /filter\.vaIds: no such VA: no-such-va/],
      [{ webhook: { url: 'ftp://127.0.0.1/x' } }, /webhook\.url: an http\(s\) URL/],
      [{ webhook: { hmacKeyFile: join(tempDir('nope'), 'missing') } }, /webhook\.hmacKeyFile: /],
      [{ syslog: { port: 514 } }, /syslog: this is a webhook sink/],
      [{ name: '' }, /name/],
      [{ name: null }, /^body: name: /],
      [{ resolutions: null }, /^body: resolutions: /],
      [{ filter: { severities: null } }, /^body: filter\.severities: /],
      [{ enabled: 'yes' }, /enabled/],
      [{ enabled: false, filter: { severities: ['loud'] } }, /filter\.severities/],
      [{}, /at least one field/],
    ];
    for (const [body, message] of cases) {
      const r = await admin.patch(`/notifications/sinks/${before.id}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await admin.get('/notifications/sinks')).body.items[0]).toEqual(before);
    expect(await sinkEvents()).toHaveLength(events);

    expect((await admin.patch('/notifications/sinks/no-such-sink', { enabled: false })).status).toBe(404);
    // A key is never written under a name the caller typed.
    const outside = await admin.patch(`/notifications/sinks/${encodeURIComponent('../../escaped')}`, { webhook: { newSecret: true } });
    expect(outside.status).toBe(404);
    expect(readdirSync(dirname(h.config.dataDir)).filter((f) => f.startsWith('escaped-'))).toEqual([]);
    expect((await h.api.patch(`/api/v1/notifications/sinks/${before.id}`).set(as(operatorToken)).send({ enabled: false })).status).toBe(403);
    expect((await admin.get('/notifications/sinks')).body.items[0]).toEqual(before);
  });

  it('when a webhook sink is added with no key file, then the collector makes a key, answers it once, signs with it, and a new one replaces it on request', async () => {
    await admin.delete(`/notifications/sinks/${(await admin.get('/notifications/sinks')).body.items[0].id}`);
    const added = await admin.post('/notifications/sinks', { kind: 'webhook', name: 'made', webhook: { url: hookUrl }, filter: { severities: ['critical'] } });
    expect(added.status).toBe(201);
    const secret = added.body.secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const file = added.body.webhook.hmacKeyFile as string;
    expect(file.startsWith(h.config.dataDir)).toBe(true);
    expect(readFileSync(file, 'utf8').trim()).toBe(secret);
    const listed = await admin.get('/notifications/sinks');
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    key = secret;
    const a = raise('critical');
    await until('an alert signed with the key made', () => delivered().includes(a));
    expect(hook.hooks.at(-1)!.verified).toBe(true);

    const rotated = await admin.patch(`/notifications/sinks/${added.body.id}`, { webhook: { newSecret: true } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.body.secret).not.toBe(secret);
    expect(existsSync(file)).toBe(false);
    key = rotated.body.secret;
    const b = raise('critical');
    await until('an alert signed with the new key', () => delivered().includes(b));
    expect(hook.hooks.at(-1)!.verified).toBe(true);
    const [ev] = await sinkEvents();
    expect(ev!.details.changed).toEqual(['webhook.secret']);

    const removed = await admin.delete(`/notifications/sinks/${added.body.id}`);
    expect(removed.status).toBe(200);
    expect(existsSync(rotated.body.webhook.hmacKeyFile)).toBe(false);
    expect((await admin.get('/events?type=sink.deleted')).body.items[0]).toMatchObject({ subject: added.body.id, details: { name: 'made', kind: 'webhook' } });
    expect(findLeaks()).toEqual([]);
  });

  it('when a syslog sink is pointed at another port and TCP, then the next alert goes there', async () => {
    const udp = await udpSyslog();
    try {
      const added = await admin.post('/notifications/sinks', { kind: 'syslog', name: 'log', syslog: { host: '127.0.0.1', port: 9 } });
      const changed = await admin.patch(`/notifications/sinks/${added.body.id}`, { syslog: { port: udp.port }, filter: { severities: ['warning'] } });
      expect(changed.body.syslog).toEqual({ host: '127.0.0.1', port: udp.port, transport: 'udp', facility: 16 });
      const s = raise('warning');
      await until('the syslog message', () => udp.messages.some((m) => m.includes(s)));
      const bad = await admin.patch(`/notifications/sinks/${added.body.id}`, { syslog: { transport: 'sctp' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/syslog\.transport/);
      expect((await admin.patch(`/notifications/sinks/${added.body.id}`, { syslog: { transport: 'tcp' } })).body.syslog.transport).toBe('tcp');
    } finally {
      await udp.close();
    }
  });
});

describe('POST /notifications/subscriptions', () => {
  it('when a user of one VA names another VA, then it is refused as no such VA, and its own is taken', async () => {
    const lab = h.services.accounts.createVa({ name: 'Lab' }, 'test').id;
    const vic = await h.services.users.add({ name: 'vic', password: 'correct-horse-viewer', roles: [{ role: 'va-viewer', vaId: lab }] }, 'test');
    const token = h.services.users.createToken(vic.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
    const set = (vaIds: string[]) => h.api.post('/api/v1/notifications/subscriptions').set(as(token)).send({ email: 'vic@site.example', vaIds });
    const other = await set([h.defaultVa]);
    expect(other.status).toBe(400);
    expect(other.body.error.message).toBe(`vaIds: no such VA: ${h.defaultVa}`);
    expect((await h.api.get('/api/v1/notifications/subscriptions').set(as(token))).status).toBe(404);
    expect((await set([lab])).body).toMatchObject({ userId: vic.id, filter: { vaIds: [lab] } });
    // An admin setting it for them names any VA: what reaches them is still what they may read.
    expect((await admin.post(`/notifications/subscriptions/${vic.id}`, { email: 'vic@site.example', vaIds: [h.defaultVa, lab] })).status).toBe(200);
  });
});
