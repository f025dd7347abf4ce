import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { closedPort } from '../helpers/ports.js';
import { tempDir } from '../helpers/temp.js';
import { recordSecret } from '../helpers/secrets.js';
import { smtpSink, until, webhookReceiver } from './receivers.js';

const HOOK_SECRET = 'process-hook-secret-0123456789';
const SMTP_PASSWORD = 'process-smtp-password-987654';
recordSecret('webhook secret', HOOK_SECRET);
recordSecret('SMTP password', SMTP_PASSWORD);

const running: ServerProcess[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.stop();
});

function secretFile(value: string, mode = 0o600): string {
  const f = join(tempDir('notify-proc'), 'secret');
  writeFileSync(f, value + '\n');
  chmodSync(f, mode);
  return f;
}

async function api(url: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${url}/api/v1${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

describe('the collector as a process', () => {
  it('keeps notifications pending across a restart and delivers them when the receiver is back; sinks are added with the CLI', async () => {
    const dataDir = tempDataDir();
    const port = await closedPort();
    const smtp = await smtpSink({ user: 'outpost', password: SMTP_PASSWORD });
    const env = {
      ...envFor(dataDir),
      OUTPOST_NOTIFICATIONS_RETRY_SECONDS: '0.2',
      OUTPOST_NOTIFICATIONS_POLL_SECONDS: '0.1',
      OUTPOST_NOTIFICATIONS_EMAIL_HOST: '127.0.0.1',
      OUTPOST_NOTIFICATIONS_EMAIL_PORT: String(smtp.port),
      OUTPOST_NOTIFICATIONS_EMAIL_STARTTLS: 'false',
      OUTPOST_NOTIFICATIONS_EMAIL_USER: 'outpost',
      OUTPOST_NOTIFICATIONS_EMAIL_PASSWORD_FILE: secretFile(SMTP_PASSWORD),
      OUTPOST_LOG_LEVEL: 'debug',
    };
    try {
      const first = await serve(dataDir, env);
      running.push(first);
      const added = await cli(['notify', 'sink', 'add', '--name', 'hook', '--webhook', `http://127.0.0.1:${port}/in`, '--hmac-key-file', secretFile(HOOK_SECRET)], env);
      expect(added.stderr).toBe('');
      expect(added.stdout).toMatch(/^sink hook \(webhook\) added: /);
      const va = (await api(first.url, 'GET', '/virtual-accounts')).body.items[0].id as string;
      // A registration token that ends within the warning window raises token_expiring.
      expect((await api(first.url, 'POST', '/tokens', { vaId: va, description: 'ends soon', maxUses: 1, expiresInDays: 3 })).status).toBe(201);
      expect((await api(first.url, 'POST', '/alerts/evaluate')).status).toBe(200);
      let status: Record<string, any> = {};
      for (let i = 0; i < 200 && !status.webhook?.lastError; i++) {
        status = (await api(first.url, 'GET', '/notifications/status')).body;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status.webhook).toMatchObject({ pending: 1, lastError: { message: expect.any(String) } });
      const printed = await cli(['notify', 'status'], env);
      expect(printed.stdout).toMatch(/^webhook\s+1\s+0\s+-\s+/m);
      expect(await first.stop()).toBe(0);
      running.splice(0);

      const hook = webhookReceiver(HOOK_SECRET);
      await hook.listen(port);
      try {
        const second = await serve(dataDir, env);
        running.push(second);
        await until('the pending notification', () => hook.hooks.length >= 1);
        expect(hook.hooks[0]!.verified).toBe(true);
        expect(JSON.parse(hook.hooks[0]!.body)).toMatchObject({ event: 'opened', alert: { kind: 'token_expiring', severity: 'info', vaId: va } });
      } finally {
        await hook.close();
      }
    } finally {
      await smtp.close();
    }
  });

  it('refuses to start with an SMTP password file others may read, naming the setting; the password is in no output', async () => {
    const dataDir = tempDataDir();
    const env = {
      ...envFor(dataDir),
      OUTPOST_NOTIFICATIONS_EMAIL_HOST: '127.0.0.1',
      OUTPOST_NOTIFICATIONS_EMAIL_USER: 'outpost',
      OUTPOST_NOTIFICATIONS_EMAIL_PASSWORD_FILE: secretFile(SMTP_PASSWORD, 0o644),
    };
    await expect(serve(dataDir, env)).rejects.toThrow(/notifications\.email\.passwordFile[\s\S]*chmod 600/);
  });
});
