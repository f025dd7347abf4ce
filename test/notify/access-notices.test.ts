import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { capturingLogger, recordSecret } from '../helpers/secrets.js';
import { buildServices } from '../../src/main.js';
import type { Role } from '../../src/users/roles.js';
import { smtpSink, until, webhookReceiver } from './receivers.js';

/**
 * Access requests told through the notification outbox: the users who may settle a request
 * (admins, that VA's va-admins) hear of it by e-mail when subscribed, and nobody else; the
 * requester hears of the outcome; a sink hears only when its filter lists access_request.
 * Real receivers on 127.0.0.1: an SMTP relay (smtp-server) and webhook receivers.
 */
const PASSWORD = 'correct horse battery staple';
const HOOK_SECRET = 'access-hook-secret-0123456789';
recordSecret('webhook secret', HOOK_SECRET);

type Smtp = Awaited<ReturnType<typeof smtpSink>>;
let smtp: Smtp;
let h: Harness;
let vaA: string;
let vaB: string;
const bearer: Record<string, string> = {};
const userIds: Record<string, string> = {};
const hookAccess = webhookReceiver(HOOK_SECRET);
const hookAll = webhookReceiver(HOOK_SECRET);

const notifyConfig = (port: number) => ({
  notifications: { retrySeconds: [0.2], pollSeconds: 3600, timeoutSeconds: 5, coalesceMinutes: 0, email: { host: '127.0.0.1', port, secure: false, starttls: false, from: 'outpost@site.example' } },
});

async function user(hh: Harness, name: string, roles: { role: Role; vaId?: string }[]): Promise<void> {
  // Every user is created with a role; one with none has had it taken away.
  const u = await hh.services.users.add({ name, password: PASSWORD, roles: roles.length ? roles : [{ role: 'va-viewer', vaId: hh.defaultVa }] }, 'test');
  if (!roles.length) hh.services.db.prepare('DELETE FROM user_roles WHERE user_id = ?').run(u.id);
  userIds[name] = u.id;
  bearer[name] = hh.services.users.createToken(u.id, { name: 'test', expiresInDays: 1 }, 'test').secret;
}
const as = (hh: Harness, who: string) => ({
  post: (path: string, body: object = {}) => hh.api.post(`/api/v1${path}`).set('authorization', `Bearer ${bearer[who]}`).send(body),
  patch: (path: string, body: object = {}) => hh.api.patch(`/api/v1${path}`).set('authorization', `Bearer ${bearer[who]}`).send(body),
});
const subscribe = (hh: Harness, who: string) => as(hh, who).post('/notifications/subscriptions', { email: `${who}@site.example`, severities: ['critical'] }).expect(200);
const recipients = (mails: Smtp['mails']) => mails.flatMap((m) => m.to).sort();
const subjectOf = (raw: string) => /^Subject: (.*)$/m.exec(raw)?.[1] ?? '';

beforeAll(async () => {
  smtp = await smtpSink({});
  const hookDir = tempDir('access-notices');
  const keyFile = join(hookDir, 'hook.secret');
  writeFileSync(keyFile, HOOK_SECRET + '\n');
  chmodSync(keyFile, 0o600);
  const [accessPort, allPort] = await Promise.all([hookAccess.listen(), hookAll.listen()]);
  h = await startHarness({ config: notifyConfig(smtp.port) });
  vaA = h.defaultVa;
  vaB = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id;
  await user(h, 'ann', [{ role: 'admin' }]);
  await user(h, 'bea', [{ role: 'va-admin', vaId: vaB }]);
  await user(h, 'cal', [{ role: 'va-admin', vaId: vaA }]);
  await user(h, 'vic', [{ role: 'va-viewer', vaId: vaB }]);
  await user(h, 'otto', [{ role: 'operator' }]);
  await user(h, 'dora', [{ role: 'admin' }]);
  await user(h, 'nora', []);
  for (const who of ['ann', 'bea', 'cal', 'vic', 'otto', 'dora', 'nora']) await subscribe(h, who);
  // A disabled admin keeps its subscription, and hears nothing.
  await as(h, 'ann').patch(`/users/${userIds.dora}`, { status: 'disabled' }).expect(200);
  await as(h, 'ann').post('/notifications/sinks', { kind: 'webhook', name: 'access', webhook: { url: `http://127.0.0.1:${accessPort}/in`, hmacKeyFile: keyFile }, filter: { kinds: ['access_request'] } }).expect(201);
  // A sink of every kind is told of alerts, not of access requests.
  await as(h, 'ann').post('/notifications/sinks', { kind: 'webhook', name: 'alerts', webhook: { url: `http://127.0.0.1:${allPort}/in`, hmacKeyFile: keyFile } }).expect(201);
  h.services.notify.start();
});
afterAll(async () => {
  await h.services.notify.stop();
  await h.close();
  await Promise.all([smtp.close(), hookAccess.close(), hookAll.close()]);
});

describe('access request notices', () => {
  it('when a user asks for access to a VA, then its approvers who subscribed get a mail (an admin, its va-admin) and nobody else; a sink hears of it only when its filter lists access_request', async () => {
    const made = await as(h, 'nora').post('/access/requests', { vaId: vaB, role: 'va-viewer', justification: 'I run the switches of building B.' }).expect(201);
    await until('the approvers\' mails and the sink', () => smtp.mails.length >= 2 && hookAccess.hooks.length >= 1);
    await h.services.notify.delivery.idle();
    // Not bea's peer on another VA (cal), not a viewer of B (vic), not an operator (otto), not a disabled admin (dora), not the requester.
    expect(recipients(smtp.mails)).toEqual(['ann@site.example', 'bea@site.example']);
    for (const m of smtp.mails) expect(subjectOf(m.raw)).toBe('[Outpost] Access request: nora asks for va-viewer on Branch: I run the switches of building B.');
    expect(hookAccess.hooks).toHaveLength(1);
    expect(hookAccess.hooks[0]!.verified).toBe(true);
    expect(JSON.parse(hookAccess.hooks[0]!.body)).toMatchObject({
      event: 'notice', alert: null,
      notice: { kind: 'access_request', subject: made.body.id, vaId: vaB, details: { step: 'requested', requestId: made.body.id, user: 'nora', va: 'Branch', role: 'va-viewer' } },
    });
    expect(hookAll.hooks).toEqual([]);
    // A notice, not an alert: nothing is open about it.
    expect(h.count("SELECT count(*) FROM alerts WHERE cleared_at IS NULL AND kind = 'access_request'")).toBe(0);
  });

  it('when the request is approved, then its requester is told by mail, and the approvers are not told again', async () => {
    smtp.mails.length = 0;
    const id = (h.services.db.prepare("SELECT id FROM access_requests WHERE state = 'pending'").pluck().get()) as string;
    await as(h, 'bea').post(`/access/requests/${id}/approve`, { role: 'va-viewer' }).expect(200);
    await until('the outcome mail', () => smtp.mails.length >= 1 && hookAccess.hooks.length >= 2);
    await h.services.notify.delivery.idle();
    expect(recipients(smtp.mails)).toEqual(['nora@site.example']);
    expect(subjectOf(smtp.mails[0]!.raw)).toBe('[Outpost] Access request approved: nora now holds va-viewer on Branch (asked va-viewer), granted by bea');
    expect(JSON.parse(hookAccess.hooks[1]!.body)).toMatchObject({ event: 'notice', notice: { details: { step: 'approved', decidedBy: 'bea', grantedRole: 'va-viewer' } } });
    expect(hookAll.hooks).toEqual([]);
  });

  it('when a request on another VA is denied, then that VA\'s approvers heard of it and the requester reads the reason', async () => {
    smtp.mails.length = 0;
    const made = await as(h, 'nora').post('/access/requests', { vaId: vaA, role: 'va-admin', justification: 'I would make the registration tokens.' }).expect(201);
    await until('the approvers\' mails', () => smtp.mails.length >= 2);
    await h.services.notify.delivery.idle();
    expect(recipients(smtp.mails)).toEqual(['ann@site.example', 'cal@site.example']);
    smtp.mails.length = 0;
    await as(h, 'cal').post(`/access/requests/${made.body.id}/deny`, { reason: 'Tokens are made by the network team.' }).expect(200);
    await until('the outcome mail', () => smtp.mails.length >= 1);
    await h.services.notify.delivery.idle();
    expect(recipients(smtp.mails)).toEqual(['nora@site.example']);
    expect(subjectOf(smtp.mails[0]!.raw)).toBe("[Outpost] Access request denied: nora's request for va-admin on Default, denied by cal: Tokens are made by the network team.");
  });

  it('when the requester withdraws a request, then the approvers who heard it waits hear it no longer does, and the requester is not told', async () => {
    smtp.mails.length = 0;
    const made = await as(h, 'nora').post('/access/requests', { vaId: vaA, role: 'va-viewer', justification: 'I only need to read the campus figures.' }).expect(201);
    await until('the approvers\' mails', () => smtp.mails.length >= 2);
    await h.services.notify.delivery.idle();
    smtp.mails.length = 0;
    await as(h, 'nora').post(`/access/requests/${made.body.id}/withdraw`).expect(200);
    await until('the withdrawal mails', () => smtp.mails.length >= 2);
    await h.services.notify.delivery.idle();
    expect(recipients(smtp.mails)).toEqual(['ann@site.example', 'cal@site.example']);
    expect(subjectOf(smtp.mails[0]!.raw)).toBe('[Outpost] Access request withdrawn: nora no longer asks for va-viewer on Default');
  });
});

describe('a restart with an access notice pending', () => {
  it('when the collector stops before delivering it, then the store started again delivers it', async () => {
    const relay = await smtpSink({});
    const first = await startHarness({ config: notifyConfig(relay.port) });
    try {
      await user(first, 'ann', [{ role: 'admin' }]);
      await user(first, 'nora', []);
      await subscribe(first, 'ann');
      // No delivery runs here: the notice waits in the outbox the request was written with.
      await as(first, 'nora').post('/access/requests', { vaId: first.defaultVa, role: 'va-viewer', justification: 'I look after the lab switches.' }).expect(201);
      expect(first.count("SELECT count(*) FROM notifications WHERE state = 'pending' AND event = 'notice'")).toBe(1);
      first.services.db.close();

      const again = buildServices(first.config, { logger: capturingLogger() });
      try {
        again.notify.start();
        await until('the pending mail', () => relay.mails.length >= 1);
        await again.notify.stop();
        expect(recipients(relay.mails)).toEqual(['ann@site.example']);
        expect(subjectOf(relay.mails[0]!.raw)).toBe('[Outpost] Access request: nora asks for va-viewer on Default: I look after the lab switches.');
        expect(again.db.prepare("SELECT state FROM notifications WHERE event = 'notice'").pluck().all()).toEqual(['sent']);
      } finally {
        again.db.close();
      }
    } finally {
      await first.close();
      await relay.close();
    }
  });
});
