import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { TAG, TAG2 } from '../helpers/harness.js';
import { recordSecret } from '../helpers/secrets.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { until, webhookReceiver } from '../notify/receivers.js';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * The Notifications page in a real browser against a real collector (see browser.ts for the
 * seeded site): an admin adds a webhook sink pointing at a receiver this test runs, a device's
 * report raises a shortage that reaches it signed and shows as delivered in the page's status;
 * the admin narrows the sink's filter and the next alert of the severity left out is not sent;
 * a VA viewer sets and ends its own subscription and is shown no sink.
 */
interface Hooked {
  alert: { kind: string; subject: string; severity: string; vaId: string | null };
}
interface ChannelStatus {
  pending: number;
  failed: number;
  lastSuccessAt: string | null;
}

describe('the Notifications page in a real browser', () => {
  const site = useConsole(undefined, {
    env: { OUTPOST_NOTIFICATIONS_RETRY_SECONDS: '0.2', OUTPOST_NOTIFICATIONS_POLL_SECONDS: '0.1', OUTPOST_NOTIFICATIONS_COALESCE_MINUTES: '0' },
  });
  let key = '';
  const hook = webhookReceiver(() => key);
  let hookUrl = '';
  /** Answers 404 to GET /notifications/subscriptions (no subscription yet): Chromium logs each as an error, which the page expects. */
  let noSubscription = 0;
  beforeAll(async () => {
    hookUrl = `http://127.0.0.1:${await hook.listen()}/outpost`;
  });
  afterAll(() => hook.close());

  const hooked = () => hook.hooks.map((x) => JSON.parse(x.body) as Hooked);
  const page404s = (context: BrowserContext) =>
    context.on('response', (r) => r.status() === 404 && r.url().endsWith('/api/v1/notifications/subscriptions') && r.request().method() === 'GET' && noSubscription++);
  let serial = 0;
  const report = async (token: string, tag: string, n: number) => {
    const d = new SimulatedDevice(site.server.url, site.collectorId, { pid: 'C9300-24T', serial: `UI-NOTE-${++serial}` });
    expect((await d.register(token)).status).toBe(201);
    expect((await d.sendReport(d.report(tag, n))).status).toBe(200);
  };
  const post = async <T>(context: BrowserContext, path: string, data: unknown): Promise<T> => {
    const { csrfToken } = await site.api<{ csrfToken: string }>(context, '/auth/session');
    const r = await context.request.post(`${site.server.url}/api/v1${path}`, { data, headers: { 'x-csrf-token': csrfToken } });
    expect(r.status(), await r.text()).toBe(200);
    return (await r.json()) as T;
  };
  const sinksAnswer = async (page: Page) => (await page.locator('#sinks-list').getAttribute('data-answer')) ?? '';

  it('when an admin adds a webhook sink, then a shortage reaches the receiver signed and the status shows it delivered; a narrowed filter holds back the next alert of the severity left out', async () => {
    const { context, page } = await site.newPage();
    page404s(context);
    await site.signIn(page, ADMIN);
    await site.go(page, 'notifications');
    expect(await page.locator('#sinks-list').textContent()).toContain('No sink yet');
    expect(await page.locator('#channels tr[data-channel="webhook"] .last-success').textContent()).toBe('never');

    // A webhook sink, its key made by the collector and shown once, with Copy.
    const form = page.locator('#sink-add-form');
    await form.getByLabel('Sink kind').selectOption('webhook');
    await form.getByLabel('Name').fill('hooks');
    await form.getByLabel('Webhook URL').fill(hookUrl);
    let before = await sinksAnswer(page);
    await form.getByRole('button', { name: 'Add sink' }).click();
    await site.answered(page, '#sinks-list', before);
    await page.locator('#sink-secret').waitFor();
    key = await page.locator('#sink-secret').inputValue();
    recordSecret('webhook secret', key);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await page.locator('#sinks-notice').textContent()).toContain('Sink hooks added.');
    await page.locator('#sink-copy').click();
    await page.getByText('Copied.').waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(key);
    const row = page.locator('#sinks tr[data-name="hooks"]');
    expect(await row.locator('.target').textContent()).toBe(hookUrl);
    expect(await row.locator('.severities').textContent()).toBe('info, warning, critical');
    const [sink] = (await site.api<{ items: { id: string; webhook: { hmacKeyFile: string } }[] }>(context, '/notifications/sinks')).items;
    expect(JSON.stringify(sink)).not.toContain(key);

    // Lab: 2 DNA of 10 owned; a device reporting 9 more makes a shortage, a critical alert.
    await report(site.tokens.lab, TAG, 9);
    await until('the shortage at the receiver', () => hooked().some((x) => x.alert.kind === 'shortage'));
    expect(hook.hooks.map((x) => x.verified)).toEqual([true]);
    expect(hooked()[0]!.alert).toMatchObject({ kind: 'shortage', severity: 'critical', vaId: site.labVa });
    const webhookRow = page.locator('#channels tr[data-channel="webhook"]');
    // The delivery is recorded just after the receiver answers: the status is read again until it says so.
    for (let i = 0; (await webhookRow.locator('.last-success').textContent()) === 'never'; i++) {
      expect(i, 'the page never showed the delivery').toBeLessThan(100);
      const answer = (await page.locator('#notify-status').getAttribute('data-answer')) ?? '';
      await page.getByRole('button', { name: 'Read the status again' }).click();
      await site.answered(page, '#notify-status', answer);
    }
    const api = await site.api<Record<string, ChannelStatus>>(context, '/notifications/status');
    expect(api.webhook).toMatchObject({ pending: 0, failed: 0, lastSuccessAt: expect.any(String) });
    expect(await webhookRow.locator('.pending').textContent()).toBe('0');
    expect(await webhookRow.locator('.last-success').textContent()).toMatch(/just now|min ago/);

    // Narrowed to info and warning: a second shortage (critical) is not sent, the next info alert is.
    await row.getByRole('button', { name: 'Change hooks' }).click();
    const editor = page.locator('#sink-edit-form');
    await editor.getByLabel('critical').uncheck();
    before = await sinksAnswer(page);
    await editor.getByRole('button', { name: 'Save changes' }).click();
    await site.answered(page, '#sinks-list', before);
    expect(await page.locator('#sinks-notice').textContent()).toContain('Sink hooks: changes saved.');
    expect(await page.locator('#sink-edit-form').count()).toBe(0);
    expect(await row.locator('.severities').textContent()).toBe('info, warning');
    const changed = (await site.api<{ items: { type: string; details: { changed: string[] } }[] }>(context, '/events?type=sink.updated')).items;
    expect(changed[0]!.details.changed).toEqual(['filter.severities']);

    // Default: 90 Advantage of 100; 20 more is a shortage.
    await report(site.tokens.default, TAG2, 20);
    const alerts = (await site.api<{ items: { kind: string; severity: string; subject: string }[] }>(context, '/alerts?kind=shortage')).items;
    expect(alerts.some((a) => a.subject.includes(TAG2) && a.severity === 'critical')).toBe(true);
    await post(context, '/exchange/export', {});
    await until('the export_ready alert at the receiver', () => hooked().some((x) => x.alert.kind === 'export_ready'));
    // Held back, not waiting: nothing is pending for the webhook, and the receiver had one shortage only.
    expect((await site.api<Record<string, ChannelStatus>>(context, '/notifications/status')).webhook!.pending).toBe(0);
    expect(hooked().map((x) => `${x.alert.kind}:${x.alert.severity}`)).toEqual(['shortage:critical', 'export_ready:info']);
    expect(hook.hooks.every((x) => x.verified)).toBe(true);

    // A syslog sink beside it, then the webhook turned off, and removed once confirmed.
    await form.getByLabel('Sink kind').selectOption('syslog');
    await form.getByLabel('Name').fill('siem');
    await form.getByLabel('Syslog host').fill('127.0.0.1');
    await form.getByLabel('Port', { exact: true }).fill('6514');
    await form.getByLabel('Transport').selectOption('tcp');
    await form.getByLabel('Alert kinds').fill('shortage, device_silent');
    before = await sinksAnswer(page);
    await form.getByRole('button', { name: 'Add sink' }).click();
    await site.answered(page, '#sinks-list', before);
    const siem = page.locator('#sinks tr[data-name="siem"]');
    expect(await siem.locator('.target').textContent()).toBe('tcp://127.0.0.1:6514');
    expect(await siem.locator('.kinds').textContent()).toBe('shortage, device_silent');
    expect(await page.locator('#sink-secret').count()).toBe(0);

    before = await sinksAnswer(page);
    await row.getByRole('button', { name: 'Disable hooks' }).click();
    await site.answered(page, '#sinks-list', before);
    expect(await row.locator('.state').textContent()).toBe('disabled');
    expect(await page.locator('#sinks-notice').textContent()).toContain('Sink hooks: disabled');
    await site.axe(page, 'notifications page of an admin');
    await site.screenshot(page, 'notifications');

    page.once('dialog', (d) => void d.dismiss());
    await row.getByRole('button', { name: 'Remove hooks' }).click();
    expect(await page.locator('#sinks tbody tr').count()).toBe(2);
    page.once('dialog', (d) => void d.accept());
    before = await sinksAnswer(page);
    await row.getByRole('button', { name: 'Remove hooks' }).click();
    await site.answered(page, '#sinks-list', before);
    expect(await page.locator('#sinks-notice').textContent()).toContain('Sink hooks removed.');
    expect((await site.api<{ items: { name: string }[] }>(context, '/notifications/sinks')).items.map((s) => s.name)).toEqual(['siem']);
    await context.close();
  });

  it('when a VA viewer sets its own subscription, then it may name only its VA, sees no sink nor status, and can end it', async () => {
    const { context, page } = await site.newPage();
    page404s(context);
    const asked: string[] = [];
    context.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await site.signIn(page, VIEWER);
    await site.go(page, 'notifications');
    expect(await page.locator('#subscription-summary').textContent()).toContain('You have no subscription');
    expect(await page.locator('#sinks-admin').count()).toBe(0);
    expect(await page.locator('#subscription-vas label').allTextContents()).toEqual(['Lab']);

    const form = page.locator('#subscription-form');
    await form.getByLabel('E-mail address').fill('vic@site.example');
    await form.getByLabel('Lab').check();
    await form.getByLabel('A daily digest').check();
    let before = (await page.locator('#subscription').getAttribute('data-answer')) ?? '';
    await form.getByRole('button', { name: 'Subscribe' }).click();
    await site.answered(page, '#subscription', before);
    expect(await page.locator('#subscription-notice').textContent()).toContain('Your subscription is saved: alerts go to vic@site.example.');
    expect(await site.api(context, '/notifications/subscriptions')).toMatchObject({
      email: 'vic@site.example', filter: { severities: ['warning', 'critical'], vaIds: [site.labVa] }, resolutions: false, digest: true,
    });
    expect(await page.locator('#subscription-summary').textContent()).toBe('Alerts of severity warning, critical about Lab go to vic@site.example, with a daily digest.');
    await site.axe(page, 'notifications page of a VA viewer');
    await site.screenshot(page, 'notifications-va-viewer');

    before = (await page.locator('#subscription').getAttribute('data-answer')) ?? '';
    await page.getByRole('button', { name: 'End subscription' }).click();
    await site.answered(page, '#subscription', before);
    expect(await page.locator('#subscription-notice').textContent()).toContain('Your subscription has ended');
    expect(await page.locator('#subscription-summary').textContent()).toContain('You have no subscription');
    expect(asked.filter((p) => /\/notifications\/(sinks|status)/.test(p))).toEqual([]);
    await context.close();
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    // A user with no subscription is answered 404, which Chromium logs; the page expects it.
    const expected = site.problems.filter((p) => /Failed to load resource: the server responded with a status of 404/.test(p));
    expect(expected.length).toBe(noSubscription);
    site.problems.splice(0, site.problems.length, ...site.problems.filter((p) => !expected.includes(p)));
    expectCleanPages(site);
  });
});
