import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/shared/clock.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { recordSecret } from '../helpers/secrets.js';
import { smtpSink, until, webhookReceiver } from './receivers.js';

const SECRET = 'coalesce-hook-secret-0123456789';
recordSecret('webhook secret', SECRET);
const MIN = 60_000;

let h: Harness;
const clock = new ManualClock(Date.UTC(2026, 5, 1, 9, 0, 0));
const hook = webhookReceiver(SECRET);
let smtp: Awaited<ReturnType<typeof smtpSink>>;

beforeAll(async () => {
  const port = await hook.listen();
  smtp = await smtpSink({});
  // The default window (15 minutes) is what this file tests: it is not overridden.
  h = await startHarness({
    clock,
    config: { notifications: { pollSeconds: 0.05, email: { host: '127.0.0.1', port: smtp.port, starttls: false } } },
  });
  expect(h.config.notifications.coalesceMinutes).toBe(15);
  const f = join(tempDir('notify-coalesce'), 'hook.key');
  writeFileSync(f, SECRET);
  chmodSync(f, 0o600);
  const r = await h.api.post('/api/v1/notifications/sinks').send({ kind: 'webhook', name: 'hook', webhook: { url: `http://127.0.0.1:${port}/`, hmacKeyFile: f } });
  expect(r.status).toBe(201);
  h.services.notify.start();
});
afterAll(async () => {
  await h.services.notify.stop();
  await h.close();
  await Promise.all([hook.close(), smtp.close()]);
});

const raise = (subject: string, severity: 'info' | 'warning' | 'critical' = 'warning') =>
  h.services.alerts.raise('device_silent', { subject, severity, message: `${subject} has not reported`, details: { vaId: h.defaultVa } });
const bodies = () => hook.hooks.map((x) => JSON.parse(x.body));

describe('a flapping alert', () => {
  it('is notified at once, then its repeats within 15 minutes are one notification that says how many times', async () => {
    raise('flappy');
    await until('the first notification', () => hook.hooks.length === 1);
    for (let i = 0; i < 3; i++) {
      clock.advance(MIN);
      h.services.alerts.clear('device_silent', 'flappy');
      clock.advance(MIN);
      raise('flappy');
    }
    // Another alert is not held back by the flapping one.
    raise('steady');
    await until('the other alert', () => hook.hooks.length === 2);
    await h.services.notify.delivery.idle();
    expect(bodies().map((b) => b.alert.subject)).toEqual(['flappy', 'steady']);
    expect(h.count("SELECT count(*) FROM notifications WHERE subject = 'flappy' AND state = 'pending'")).toBe(1);

    clock.advance(15 * MIN);
    h.services.notify.delivery.nudge();
    await until('the coalesced notification', () => hook.hooks.length === 3);
    const last = bodies()[2];
    expect(last).toMatchObject({ event: 'opened', count: 3, alert: { subject: 'flappy' } });
    expect(last.text).toMatch(/opened 3 times since 2026-06-01T09:02:00\.000Z/);
  });
});

describe('the daily digest', () => {
  it('sends each subscriber who asked for one the day\'s alerts of their filter, once a day', async () => {
    const user = await h.services.users.add({ name: 'digest', password: 'correct-horse-battery', roles: [{ role: 'auditor' }] }, 'test');
    h.services.notify.subscriptions.set(user.id, { email: 'digest@site.example', severities: ['critical'], vaIds: [h.defaultVa], resolutions: false, digest: true }, () => true);
    h.services.notify.subscriptions.set(
      (await h.services.users.add({ name: 'nodigest', password: 'correct-horse-staple', roles: [{ role: 'auditor' }] }, 'test')).id,
      { email: 'nodigest@site.example', severities: ['critical'], vaIds: null, resolutions: false, digest: false }, () => true,
    );
    h.services.alerts.raise('shortage', { subject: 'digest-a', severity: 'critical', message: 'digest-a is short', details: { vaId: h.defaultVa } });
    h.services.alerts.raise('shortage', { subject: 'digest-b', severity: 'critical', message: 'digest-b is short', details: { vaId: h.defaultVa } });
    h.services.alerts.clear('shortage', 'digest-b');
    expect(h.services.notify.daily()).toBe(1);
    expect(h.services.notify.daily()).toBe(0); // the same day again: nothing more
    await until('the digest', () => smtp.mails.some((m) => m.raw.includes('Daily digest')));
    await h.services.notify.delivery.idle();
    const digests = smtp.mails.filter((m) => m.raw.includes('Daily digest'));
    expect(digests).toHaveLength(1);
    expect(digests[0]!.to).toEqual(['digest@site.example']);
    expect(digests[0]!.raw).toMatch(/- CRITICAL shortage digest-a: digest-a is short \(opened [^)]*, still open\)/);
    expect(digests[0]!.raw).toMatch(/- CRITICAL shortage digest-b: digest-b is short \(opened [^)]*, resolved [^)]*\)/);
    expect(digests[0]!.raw).not.toContain('flappy'); // a warning, below the filter
  });
});
