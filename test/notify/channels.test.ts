import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG, startHarness, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { findLeaks, recordSecret } from '../helpers/secrets.js';
import { hangingServer, smtpSink, tcpSyslog, udpSyslog, until, webhookReceiver } from './receivers.js';

const SMTP_PASSWORD = 'smtp-Pa55word-never-logged';
const HOOK_SECRET = 'hook-secret-0123456789abcdef';

let h: Harness;
let smtp: Awaited<ReturnType<typeof smtpSink>>;
let udp: Awaited<ReturnType<typeof udpSyslog>>;
let tcp: Awaited<ReturnType<typeof tcpSyslog>>;
const hook = webhookReceiver(HOOK_SECRET);
let hookPort: number;
let hmacKeyFile: string;
let userId: string;
let adminToken: string;
let aliceToken: string;
let devices: Awaited<ReturnType<Harness['registered']>>[];
const as = (token: string) => ({ authorization: `Bearer ${token}` });

const secretIn = (dir: string, name: string, value: string, mode = 0o600) => {
  const f = join(dir, name);
  writeFileSync(f, value + '\n');
  chmodSync(f, mode);
  return f;
};

beforeAll(async () => {
  const ca = makeTestCa();
  smtp = await smtpSink({ user: 'outpost', password: SMTP_PASSWORD, tls: ca.server });
  udp = await udpSyslog();
  tcp = await tcpSyslog();
  hookPort = await hook.listen();
  const dir = tempDir('notify');
  recordSecret('SMTP password', SMTP_PASSWORD);
  recordSecret('webhook secret', HOOK_SECRET);
  hmacKeyFile = secretIn(dir, 'hook.secret', HOOK_SECRET);
  h = await startHarness({
    config: {
      notifications: {
        retrySeconds: [0.2], pollSeconds: 0.1, timeoutSeconds: 5, coalesceMinutes: 0,
        email: { host: '127.0.0.1', port: smtp.port, secure: false, starttls: true, caFile: ca.caFile, user: 'outpost', passwordFile: secretIn(dir, 'smtp.password', SMTP_PASSWORD), from: 'outpost@site.example' },
      },
    },
  });
  h.services.notify.start();
  devices = await Promise.all([1, 2, 3].map((i) => h.registered(`HANG${i}`)));
  // Once users exist, the API asks every caller who they are.
  const root = await h.services.users.add({ name: 'root', password: 'correct-horse-battery', roles: [{ role: 'admin' }] }, 'test');
  adminToken = h.services.users.createToken(root.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
  userId = (await h.services.users.add({ name: 'alice', password: 'correct-horse-staple', roles: [{ role: 'operator' }] }, 'test')).id;
  aliceToken = h.services.users.createToken(userId, { name: 'test', expiresInDays: 1 }, 'test').secret;
});
afterAll(async () => {
  await h.services.notify.stop();
  await h.close();
  await Promise.all([smtp.close(), udp.close(), tcp.close(), hook.close()]);
});

const raise = (subject: string, severity: 'info' | 'warning' | 'critical' = 'critical', kind: 'shortage' | 'device_silent' = 'shortage') =>
  h.services.alerts.raise(kind, { subject, severity, message: `${subject} is short by 3 licenses`, details: { vaId: h.defaultVa, inUse: 5, owned: 2 } });

describe('e-mail notifications', () => {
  it('when a subscribed user has an alert open, then a mail goes through STARTTLS and AUTH to their address, and the password shows in no log', async () => {
    const sub = await h.api.post('/api/v1/notifications/subscriptions').set(as(aliceToken)).send({ email: 'alice@site.example', severities: ['critical'] });
    expect(sub.status).toBe(200);
    expect(sub.body).toMatchObject({ userId, email: 'alice@site.example', filter: { severities: ['critical'], vaIds: null } });
    raise('mail-1', 'warning'); // below her severities: no mail
    raise('mail-2', 'critical');
    await until('a mail', () => smtp.mails.length >= 1);
    await h.services.notify.delivery.idle();
    expect(smtp.mails).toHaveLength(1);
    const m = smtp.mails[0]!;
    expect(m).toMatchObject({ from: 'outpost@site.example', to: ['alice@site.example'], user: 'outpost', secure: true });
    expect(m.raw).toMatch(/^Subject: \[Outpost\] CRITICAL shortage mail-2 opened: mail-2 is short by 3 licenses/m);
    expect(smtp.authFailures).toEqual([]);
    expect(findLeaks()).toEqual([]);
  });
});

describe('syslog sinks', () => {
  it('when an alert opens, then an RFC 5424 message goes over UDP as one datagram and over TCP octet-counted (RFC 6587)', async () => {
    for (const [name, transport, port] of [['udp-sink', 'udp', udp.port], ['tcp-sink', 'tcp', tcp.port]] as const) {
      const r = await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'syslog', name, syslog: { host: '127.0.0.1', port, transport }, filter: { kinds: ['shortage'] } });
      expect(r.status).toBe(201);
    }
    raise('syslog-1', 'warning', 'device_silent'); // not a kind the sinks take
    raise('syslog-2', 'critical');
    await until('both syslog messages', () => udp.messages.length >= 1 && tcp.messages.length >= 1);
    await h.services.notify.delivery.idle();
    expect(udp.messages).toHaveLength(1);
    expect(tcp.messages).toHaveLength(1);
    expect(tcp.errors).toEqual([]);
    for (const msg of [udp.messages[0]!, tcp.messages[0]!]) {
      // local0 (16) * 8 + crit (2) = 130
      expect(msg).toMatch(/^<130>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ outpost \d+ shortage \[outpost@32473 id="\d+" event="opened" kind="shortage" subject="syslog-2" severity="critical" count="1" alertId="\d+" vaId="[^"]+"\] \uFEFFCRITICAL shortage syslog-2 opened: syslog-2 is short by 3 licenses$/);
    }
  });
});

describe('webhook sinks', () => {
  it('when an alert opens, then a JSON POST arrives whose HMAC-SHA256 header verifies over the exact body and timestamp', async () => {
    const r = await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({
      kind: 'webhook', name: 'hook', webhook: { url: `http://127.0.0.1:${hookPort}/outpost`, hmacKeyFile }, filter: { vaIds: [h.defaultVa] }, resolutions: true,
    });
    expect(r.status).toBe(201);
    expect(JSON.stringify(r.body)).not.toContain(HOOK_SECRET);
    raise('hook-1', 'info');
    await until('the webhook', () => hook.hooks.length >= 1);
    h.services.alerts.clear('shortage', 'hook-1');
    await until('the resolution', () => hook.hooks.length >= 2);
    await h.services.notify.delivery.idle();
    expect(hook.hooks.map((x) => x.verified)).toEqual([true, true]);
    const [opened, resolved] = hook.hooks.map((x) => JSON.parse(x.body));
    expect(opened).toMatchObject({ event: 'opened', count: 1, alert: { kind: 'shortage', subject: 'hook-1', severity: 'info', vaId: h.defaultVa, details: { inUse: 5, owned: 2 } } });
    expect(resolved).toMatchObject({ event: 'resolved', alert: { subject: 'hook-1' } });
    expect(Math.abs(hook.hooks[0]!.timestamp * 1000 - Date.now())).toBeLessThan(600_000);
  });

  it('then the status shows each channel\'s last success and the metrics count what was sent', async () => {
    const s = await h.api.get('/api/v1/notifications/status').set(as(adminToken));
    expect(s.status).toBe(200);
    for (const ch of ['email', 'syslog', 'webhook']) expect(s.body[ch]).toMatchObject({ pending: 0, failed: 0, lastSuccessAt: expect.any(String) });
    const m = await h.api.get('/metrics').set(as(adminToken));
    expect(m.text).toMatch(/outpost_notifications_sent_total\{channel="webhook"\} 2/);
    expect(m.text).toMatch(/outpost_notifications_sent_total\{channel="syslog"\} 4/); // two sinks, two alerts of the kind they take
    expect(m.text).toMatch(/outpost_notifications_sent_total\{channel="email"\} 2/); // alice takes every critical one
    expect(m.text).toMatch(/outpost_notifications_pending\{channel="email"\} 0/);
  });
});

describe('a bad sink or subscription', () => {
  it('gets a 400 naming the field, and nothing is written', async () => {
    const before = h.count('SELECT count(*) FROM notify_sinks');
    const port = await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'syslog', name: 'bad', syslog: { host: '127.0.0.1', port: 70000 } });
    expect(port.status).toBe(400);
    expect(port.body.error.message).toContain('syslog.port');
    const open = secretIn(tempDir('notify-bad'), 'open.secret', 'an-open-secret-file', 0o644);
    recordSecret('webhook secret', 'an-open-secret-file');
    const file = await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'webhook', name: 'bad', webhook: { url: 'http://127.0.0.1:1/x', hmacKeyFile: open } });
    expect(file.status).toBe(400);
    expect(file.body.error.message).toMatch(/^webhook\.hmacKeyFile: .*chmod 600/);
    const va = await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'webhook', name: 'bad', webhook: { url: 'http://127.0.0.1:1/x', hmacKeyFile }, filter: { vaIds: ['no-such-va'] } });
    expect(va.status).toBe(400);
    expect(va.body.error.message).toContain('filter.vaIds');
    const sev = await h.api.post(`/api/v1/notifications/subscriptions/${userId}`).set(as(adminToken)).send({ email: 'not-an-address' });
    expect(sev.status).toBe(400);
    expect(sev.body.error.message).toContain('email');
    expect(h.count('SELECT count(*) FROM notify_sinks')).toBe(before);
    expect((await h.api.get(`/api/v1/notifications/subscriptions/${userId}`).set(as(adminToken))).body.email).toBe('alice@site.example');
  });
});

describe('a sink that hangs', () => {
  it('never holds up device reports: they are answered while its deliveries hang', async () => {
    const hang = await hangingServer();
    try {
      await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'webhook', name: 'hangs', webhook: { url: `http://127.0.0.1:${hang.port}/`, hmacKeyFile } });
      await h.api.post('/api/v1/notifications/sinks').set(as(adminToken)).send({ kind: 'syslog', name: 'hangs-tcp', syslog: { host: '127.0.0.1', port: hang.port, transport: 'tcp' } });
      for (let i = 0; i < 20; i++) raise(`hang-${i}`);
      await until('the hanging sink to be tried', () => hang.accepted() > 0);
      const answers = await Promise.all(devices.flatMap((d) => [1, 2, 3].map(() => d.sendReport(d.report(TAG, 1)))));
      expect(answers.map((a) => a.status)).toEqual(Array(9).fill(200));
      expect(h.count("SELECT count(*) FROM notifications WHERE target IN (SELECT id FROM notify_sinks WHERE name = 'hangs') AND state = 'sent'")).toBe(0);
    } finally {
      await hang.close();
    }
  });
});
