import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const hook = (name: string, hmacKeyFile?: string) => ({ kind: 'webhook', name, webhook: { url: 'http://127.0.0.1:9/hook', ...(hmacKeyFile ? { hmacKeyFile } : {}) } });

// The collector removes only the webhook keys it made, and only once no sink signs with them.
describe('webhook key files when sinks change or go', () => {
  it('when an admin\'s own key file sits in data/keys under a webhook name, then removing its sink leaves the file', async () => {
    h = await startHarness();
    const file = join(h.services.config.dataDir, 'keys', 'webhook-chat.key');
    writeFileSync(file, 'an-admins-own-key-0123456789abcdef\n');
    chmodSync(file, 0o600);
    const s = await h.api.post('/api/v1/notifications/sinks').send(hook('chat', file));
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    await h.api.delete(`/api/v1/notifications/sinks/${s.body.id}`).expect(200);
    expect(existsSync(file)).toBe(true);
  });

  it('when another sink signs with a key the collector made, then removing the sink it was made for leaves it; the last one out removes it', async () => {
    h = await startHarness();
    const a = await h.api.post('/api/v1/notifications/sinks').send(hook('made'));
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const made = a.body.webhook.hmacKeyFile as string;
    expect(existsSync(made)).toBe(true);
    const b = await h.api.post('/api/v1/notifications/sinks').send(hook('borrows', made));
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    await h.api.delete(`/api/v1/notifications/sinks/${a.body.id}`).expect(200);
    expect(existsSync(made), 'still signs the other sink').toBe(true);
    // A new key for the sink it was made for replaces it there, and the old one goes once unused.
    const c = await h.api.post('/api/v1/notifications/sinks').send(hook('fresh'));
    const first = c.body.webhook.hmacKeyFile as string;
    const changed = await h.api.patch(`/api/v1/notifications/sinks/${c.body.id}`).send({ webhook: { newSecret: true } });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(existsSync(first)).toBe(false);
  });

  it('when a sink that hears of access requests is turned off, then a request writes nothing for it', async () => {
    h = await startHarness();
    const s = await h.api.post('/api/v1/notifications/sinks').send({ ...hook('access'), filter: { severities: ['info', 'warning', 'critical'], vaIds: null, kinds: ['access_request'] } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    await h.api.patch(`/api/v1/notifications/sinks/${s.body.id}`).send({ enabled: false }).expect(200);
    const lab = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id as string;
    const u = await h.services.users.add({ name: 'rita', password: 'correct-horse-battery', roles: [{ role: 'va-viewer', vaId: h.defaultVa }] }, 'test');
    const token = h.services.users.createToken(u.id, { name: 't', expiresInDays: 1 }, 'test').secret;
    const asked = await h.api.post('/api/v1/access/requests').set({ authorization: `Bearer ${token}` }).send({ vaId: lab, role: 'va-viewer', justification: 'I look after these switches.' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(h.count('SELECT count(*) FROM notifications WHERE target = ?', s.body.id)).toBe(0);
  });
});
