import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/compose/build-services.js';
import type { Services } from '../../src/services.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { closedPort } from '../helpers/ports.js';
import { capturingLogger, recordDataDir, recordSecret } from '../helpers/secrets.js';
import { until, webhookReceiver } from './receivers.js';

const SECRET = 'retry-hook-secret-abcdef012345';
recordSecret('webhook secret', SECRET);

function keyFile(): string {
  const f = join(tempDir('notify-key'), 'hook.key');
  writeFileSync(f, SECRET);
  chmodSync(f, 0o600);
  return f;
}

const fast = { retrySeconds: [0.2], pollSeconds: 0.1, timeoutSeconds: 2, coalesceMinutes: 0 };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(notifications: Record<string, unknown>): Promise<Harness> {
  const h = await startHarness({ config: { notifications } });
  h.services.notify.start();
  cleanups.push(async () => (await h.services.notify.stop(), await h.close()));
  return h;
}

const raise = (s: Services, subject: string) =>
  s.alerts.raise('shortage', { subject, severity: 'critical', message: `${subject} is short`, details: { vaId: s.accounts.list()[0]!.id } });
const addHook = (s: Services, port: number, hmacKeyFile: string) =>
  s.notify.sinks.add({ kind: 'webhook', name: 'hook', webhook: { url: `http://127.0.0.1:${port}/`, hmacKeyFile }, filter: { severities: ['critical'], vaIds: null, kinds: null }, resolutions: false }, { knownVa: () => true, dataDir: s.config.dataDir, events: s.events, actor: 'test' });

describe('a receiver that is down', () => {
  it('when it comes back, a retry delivers the notification, once; meanwhile the status shows the error and readiness is not failed', async () => {
    const h = await harness(fast);
    const port = await closedPort();
    const hook = webhookReceiver(SECRET);
    cleanups.push(() => hook.close());
    const sink = await h.api.post('/api/v1/notifications/sinks').send({ kind: 'webhook', name: 'down', webhook: { url: `http://127.0.0.1:${port}/`, hmacKeyFile: keyFile() } });
    expect(sink.status).toBe(201);
    raise(h.services, 'down-1');
    await until('a failed attempt', () => h.services.notify.status().webhook!.lastError !== null);
    const status = (await h.api.get('/api/v1/notifications/status')).body;
    expect(status.webhook).toMatchObject({ pending: 1, failed: 0, lastSuccessAt: null, lastError: { message: expect.stringMatching(/ECONNREFUSED|connect/) } });
    expect((await h.api.get('/readyz')).status).toBe(200);

    await hook.listen(port);
    await until('the retry', () => hook.hooks.length >= 1);
    await until('the row marked sent', () => h.count("SELECT count(*) FROM notifications WHERE state = 'sent'") === 1);
    // Several retry periods more: nothing is sent again.
    await new Promise((r) => setTimeout(r, 1000));
    expect(hook.hooks).toHaveLength(1);
    expect(hook.hooks[0]!.verified).toBe(true);
    expect(JSON.parse(hook.hooks[0]!.body).alert.subject).toBe('down-1');
    expect((await h.api.get('/metrics')).text).toMatch(/outpost_notifications_sent_total\{channel="webhook"\} 1/);
  });

  it('when it never comes back, the notification is marked failed with its last error once the give-up span has passed', async () => {
    const h = await harness({ ...fast, giveUpHours: 0.0003 }); // about 1 s
    addHook(h.services, await closedPort(), keyFile());
    raise(h.services, 'gone-1');
    await until('the notification failed', () => h.count("SELECT count(*) FROM notifications WHERE state = 'failed'") === 1);
    const row = h.services.db.prepare('SELECT attempts, last_error FROM notifications').get() as { attempts: number; last_error: string };
    expect(row.attempts).toBeGreaterThan(1);
    expect(row.last_error).toMatch(/ECONNREFUSED|connect/);
    expect((await h.api.get('/api/v1/notifications/status')).body.webhook).toMatchObject({ pending: 0, failed: 1 });
    expect((await h.api.get('/metrics')).text).toMatch(/outpost_notifications_failed_total\{channel="webhook"\} 1/);
  });
});

describe('a restart with notifications pending', () => {
  it('delivers them after the restart, a delivery cut short by the stop included', async () => {
    const dir = tempDir('notify-restart');
    const config = loadConfig({
      env: {},
      overrides: { dataDir: join(dir, 'data'), http: { port: 0 }, exchange: { bundleDir: join(dir, 'bundles') }, upstream: { dataDir: join(dir, 'upstream') }, notifications: fast },
    });
    recordDataDir(config.dataDir);
    const port = await closedPort();
    const before = buildServices(config, { logger: capturingLogger() });
    addHook(before, port, keyFile());
    raise(before, 'restart-1');
    raise(before, 'restart-2');
    // One was on its way when the collector stopped: claimed, never recorded.
    expect(before.notify.outbox.claim(1)).toHaveLength(1);
    expect(before.db.prepare("SELECT count(*) FROM notifications WHERE state = 'pending'").pluck().get()).toBe(2);
    before.db.close();

    const hook = webhookReceiver(SECRET);
    cleanups.push(() => hook.close());
    await hook.listen(port);
    const after = buildServices(config, { logger: capturingLogger() });
    cleanups.push(async () => void (await after.notify.stop(), after.db.close()));
    after.notify.start();
    await until('both notifications', () => hook.hooks.length >= 2);
    await after.notify.delivery.idle();
    expect(hook.hooks.map((x) => JSON.parse(x.body).alert.subject).sort()).toEqual(['restart-1', 'restart-2']);
    expect(after.db.prepare("SELECT count(*) FROM notifications WHERE state = 'sent'").pluck().get()).toBe(2);
  });
});

describe('the outbox and the alert', () => {
  it('commit together: a notification that cannot be written leaves the alert unopened', async () => {
    const h = await harness(fast);
    addHook(h.services, await closedPort(), keyFile());
    h.services.db.exec("CREATE TEMP TRIGGER outbox_full BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'outbox full'); END");
    expect(() => raise(h.services, 'atomic-1')).toThrow(/outbox full/);
    expect(h.count("SELECT count(*) FROM alerts WHERE subject = 'atomic-1'")).toBe(0);
    h.services.db.exec('DROP TRIGGER outbox_full');
    raise(h.services, 'atomic-1');
    expect(h.count("SELECT count(*) FROM alerts WHERE subject = 'atomic-1'")).toBe(1);
    expect(h.count("SELECT count(*) FROM notifications WHERE subject = 'atomic-1'")).toBe(1);
  });
});
