import { describe, expect, it } from 'vitest';
import { TAG, TAG2 } from '../helpers/harness.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { recordSecret } from '../helpers/secrets.js';
import { ADMIN, BULK, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * The operator console in a real browser (see browser.ts for the seeded site): sign-in and out,
 * the overview against the API, a token round trip, the devices and licenses pages, what a
 * VA-scoped viewer is offered, CSRF, axe-core on every page, and the screenshots the README shows.
 */
interface Row {
  va: string;
  tag: string;
  inUse: string;
  owned: string;
}

describe('the operator console in a real browser', () => {
  const site = useConsole();
  // Bound at creation; they read the site's server and browser once beforeAll has started them.
  const { newPage, signIn, go, axe, screenshot } = site;

  it('when an admin signs in, then the overview shows the API\'s numbers, the shortage first, and signing out ends the session', async () => {
    const { context, page } = await newPage();
    await page.goto(`${site.server.url}/`);
    await page.getByLabel('User name').waitFor();
    await axe(page, 'sign-in page');
    await screenshot(page, 'login');
    await signIn(page, ADMIN);
    expect(await page.locator('h1').textContent()).toBe('Overview');

    const get = async (path: string) => (await context.request.get(`${site.server.url}/api/v1${path}`)).json();
    const compliance = (await get('/compliance')) as { items: { vaId: string; tags: { tag: string; inUse: number; owned: number | null; status: string; short: number }[] }[] };
    const fromApi = compliance.items.flatMap((c) => c.tags.map((t) => ({ va: c.vaId, tag: t.tag, inUse: String(t.inUse), owned: t.owned === null ? 'unlimited' : String(t.owned) })));
    const shown: Row[] = await page.locator('#compliance tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        va: tr.getAttribute('data-va') ?? '',
        tag: tr.getAttribute('data-tag') ?? '',
        inUse: tr.querySelector('.in-use')?.textContent ?? '',
        owned: tr.querySelector('.owned')?.textContent ?? '',
      })),
    );
    const byKey = (r: Row) => `${r.va} ${r.tag}`;
    expect([...shown].sort((a, b) => byKey(a).localeCompare(byKey(b)))).toEqual([...fromApi].sort((a, b) => byKey(a).localeCompare(byKey(b))));
    expect(shown).toHaveLength(3);
    // The shortage comes first, said in words beside its hatched bar.
    const first = page.locator('#compliance tbody tr').first();
    expect(await first.getAttribute('data-tag')).toBe(TAG);
    expect(await first.locator('.status').textContent()).toContain('Shortage short by 4');
    expect(await first.getByRole('img').getAttribute('aria-label')).toBe('9 in use of 5 owned');
    expect(await page.locator('#summary-short .card-value').textContent()).toBe('1');

    for (const s of ['active', 'stale', 'deregistered']) {
      const n = ((await get(`/devices?status=${s}&limit=1000`)) as { items: unknown[] }).items.length;
      expect(await page.locator(`#device-counts dd[data-status="${s}"]`).textContent(), s).toBe(String(n));
    }
    expect(await page.locator('#device-counts dd[data-status="active"]').textContent()).toBe('5');
    const alerts = ((await get('/alerts?state=open&limit=100')) as { items: { message: string }[] }).items;
    expect(alerts.length).toBeGreaterThan(0);
    expect(await page.locator('#summary-alerts .card-value').textContent()).toBe(String(alerts.length));
    expect(await page.locator('#alerts li').count()).toBe(alerts.length);
    const exchange = (await get('/exchange/status')) as { mode: string };
    expect(await page.locator('#exchange').textContent()).toContain(exchange.mode);

    await axe(page, 'overview');
    await screenshot(page, 'overview');
    // Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to main content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('main');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('User name').waitFor();
    expect(await page.locator('#login-message').textContent()).toContain('signed out');
    expect((await context.request.get(`${site.server.url}/api/v1/auth/whoami`)).status()).toBe(401);
    // A page loaded again after sign-out asks for sign-in, without a call the API refuses.
    await page.reload();
    await page.getByLabel('User name').waitFor();
    await context.close();
  });

  it('when an admin makes a token, then its secret is shown once and copied, it registers a device, and revoking it stops that', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'tokens');
    await page.getByLabel('Virtual account').selectOption({ label: 'Lab' });
    await page.getByLabel('Description').fill('Rack 7 switches');
    await page.getByLabel('Uses').fill('2');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secretField = page.locator('#token-secret');
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    recordSecret('registration token', secret);
    expect(secret.length).toBeGreaterThan(20);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.locator('.copied', { hasText: 'Copied.' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    await axe(page, 'tokens page with a new secret');

    const listed = ((await (await context.request.get(`${site.server.url}/api/v1/tokens`)).json()) as { items: { id: string; description: string; vaId: string; state: string }[] }).items;
    const made = listed.find((t) => t.description === 'Rack 7 switches')!;
    expect(made).toMatchObject({ vaId: site.labVa, state: 'active' });
    const row = page.locator(`#tokens tr[data-token="${made.id}"]`);
    expect(await row.textContent()).toContain('0 of 2');
    // The secret shown is the real one: a device registers with it.
    expect((await new SimulatedDevice(site.server.url, site.collectorId, { pid: 'C9300-24T', serial: 'UI-TOK-1' }).register(secret)).status).toBe(201);
    // Shown once: after a reload, no page holds it.
    await page.reload();
    await page.locator('main[data-ready="true"]').waitFor();
    expect(await page.content()).not.toContain(secret);

    // The list is slow to come back: the notice must still not run ahead of the table (a race CI once lost).
    await page.route(`${site.server.url}/api/v1/tokens`, async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 400));
      await r.continue();
    });
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke Rack 7 switches' }).click();
    await page.locator('#tokens-notice', { hasText: 'revoked' }).waitFor();
    expect(await page.locator(`#tokens tr[data-token="${made.id}"] .state`).textContent()).toBe('revoked');
    const after = ((await (await context.request.get(`${site.server.url}/api/v1/tokens`)).json()) as { items: { id: string; state: string }[] }).items;
    expect(after.find((t) => t.id === made.id)!.state).toBe('revoked');
    expect((await new SimulatedDevice(site.server.url, site.collectorId, { pid: 'C9300-24T', serial: 'UI-TOK-2' }).register(secret)).status).toBe(403);
    await axe(page, 'tokens page');
    await screenshot(page, 'tokens');

    // The session cookie alone changes nothing: without the page's CSRF token the API refuses.
    const body = { vaId: site.labVa, description: 'forged', expiresInDays: 1, maxUses: 1 };
    const attempts: Record<string, string>[] = [{ origin: site.server.url }, { origin: site.server.url, 'x-csrf-token': 'not-the-token' }];
    for (const headers of attempts) {
      const forged = await context.request.post(`${site.server.url}/api/v1/tokens`, { data: body, headers });
      expect(forged.status()).toBe(403);
      expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('csrf_token_missing');
    }
    const all = ((await (await context.request.get(`${site.server.url}/api/v1/tokens`)).json()) as { items: { description: string }[] }).items;
    expect(all.some((t) => t.description === 'forged')).toBe(false);
    await context.close();
  });

  it('when an admin searches and filters the devices, then the table, its pages and its CSV link follow the collector\'s answer', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'devices');
    const serials = () => page.locator('#devices tbody th.serial').allTextContents();
    const answer = async () => (await page.locator('#devices-results').getAttribute('data-answer')) ?? '';
    const ready = (before: string) => site.answered(page, '#devices-results', before);
    expect((await serials()).length).toBe(25);
    await axe(page, 'devices page');
    await screenshot(page, 'devices');

    // The search runs on the collector: one serial's prefix leaves that device alone.
    let said = await answer();
    await page.getByLabel('Search', { exact: true }).fill('UI-LAB');
    await page.getByLabel('Search', { exact: true }).press('Enter');
    await ready(said);
    expect(await serials()).toEqual(['UI-LAB-1']);
    expect(await page.locator('#devices-csv').getAttribute('href')).toBe('/api/v1/devices.csv?q=UI-LAB');

    // A filter and a sort, chosen from the keyboard's controls, page through the retired devices.
    said = await answer();
    await page.getByLabel('Search', { exact: true }).fill('');
    await page.getByLabel('Status').selectOption('deregistered');
    await ready(said);
    said = await answer();
    await page.getByLabel('Sort by').selectOption('serial');
    await ready(said);
    const first = await serials();
    const api = ((await (await context.request.get(`${site.server.url}/api/v1/devices?status=deregistered&sort=serial&limit=25`)).json()) as { items: { udi: { serial: string } }[] }).items;
    expect(first).toEqual(api.map((d) => d.udi.serial));
    expect(first[0]).toBe('OLD-001');
    const href = await page.locator('#devices-csv').getAttribute('href');
    expect(href).toBe('/api/v1/devices.csv?status=deregistered');
    const csv = await (await context.request.get(`${site.server.url}${href}`)).text();
    expect(csv.trim().split('\n')).toHaveLength(BULK + 1);
    expect(await page.getByRole('button', { name: 'Previous page' }).isDisabled()).toBe(true);

    said = await answer();
    await page.getByRole('button', { name: 'Next page' }).focus();
    await page.keyboard.press('Enter');
    await ready(said);
    const second = await serials();
    expect(second).toEqual(Array.from({ length: BULK - 25 }, (_, i) => `OLD-${String(26 + i).padStart(3, '0')}`));
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    said = await answer();
    await page.getByRole('button', { name: 'Previous page' }).click();
    await ready(said);
    expect(await serials()).toEqual(first);
    await axe(page, 'devices page, filtered');
    await context.close();
  });

  it('when an admin opens the licenses, then the numbers are the API\'s and the history is drawn with the owned line and the forecast', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'licenses');
    const get = async (path: string) => (await context.request.get(`${site.server.url}/api/v1${path}`)).json();
    const compliance = (await get('/compliance')) as { items: { vaId: string; tags: { tag: string; inUse: number; owned: number | null }[] }[] };
    const fromApi = compliance.items.flatMap((c) => c.tags.map((t) => [c.vaId, t.tag, String(t.owned), String(t.inUse), String(Math.max(0, (t.owned ?? 0) - t.inUse))].join(' '))).sort();
    const shown = (await page.locator('#licenses tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute('data-va'), tr.getAttribute('data-tag'), ...['.owned', '.in-use', '.available'].map((c) => tr.querySelector(c)?.textContent)].join(' ')),
    )).sort();
    expect(shown).toEqual(fromApi);
    expect(shown).toHaveLength(3);

    // The shortage's history comes first: drawn, and no forecast because it is short already.
    // The collector samples today as it starts: the seeded days and today.
    const def = compliance.items.find((c) => c.tags.some((t) => t.tag === TAG2))!.vaId;
    const days = async (tag: string) => ((await get(`/usage/history?vaId=${encodeURIComponent(def)}&tag=${encodeURIComponent(tag)}`)) as { items: unknown[] }).items.length;
    const chart = page.locator('#usage-chart svg');
    expect(await chart.locator('polyline.chart-use').count()).toBe(1);
    expect(await days(TAG)).toBeGreaterThanOrEqual(5);
    expect((await chart.locator('polyline.chart-use').getAttribute('points'))!.split(' ')).toHaveLength(await days(TAG));
    expect(await chart.locator('polyline.chart-owned').count()).toBe(1);
    expect(await page.locator('#chart-forecast').textContent()).toContain('No forecast: already short');
    await axe(page, 'licenses page, a shortage');

    const before = await page.locator('#history-detail').getAttribute('data-answer');
    await page.getByLabel('License', { exact: true }).selectOption({ label: 'Default · Network Advantage' });
    await site.answered(page, '#history-detail', before);
    expect(await days(TAG2)).toBeGreaterThanOrEqual(20);
    expect((await chart.locator('polyline.chart-use').getAttribute('points'))!.split(' ')).toHaveLength(await days(TAG2));
    expect(await page.locator('#history-table tbody tr').count()).toBe(await days(TAG2));
    const forecast = ((await get('/usage/forecast')) as { items: { tag: string; crossingDate: string | null }[] }).items.find((f) => f.tag === TAG2)!;
    expect(forecast.crossingDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(await page.locator('#chart-forecast').textContent()).toContain(`passes the owned quantity on ${forecast.crossingDate}`);
    expect(await chart.locator('line.chart-crossing').count()).toBe(1);
    expect(await chart.locator('text.chart-crossing-label').textContent()).toBe(`shortage from ${forecast.crossingDate}`);
    expect(await chart.getAttribute('aria-labelledby')).toBe('chart-summary chart-forecast');
    expect(await page.locator('#entitlements tbody tr').count()).toBe(1);
    expect(await page.locator('#licenses-csv').getAttribute('href')).toBe('/api/v1/licenses.csv');
    await axe(page, 'licenses page, a forecast');
    await screenshot(page, 'licenses');
    await context.close();
  });

  it('when a viewer of one VA signs in, then it sees that VA alone and no control that changes anything', async () => {
    const { context, page } = await newPage();
    await signIn(page, VIEWER);
    const vas = await page.locator('#compliance tbody td.va').allTextContents();
    expect(vas).toEqual(['Lab']);
    expect(await page.locator('#compliance tbody tr').first().getAttribute('data-va')).toBe(site.labVa);
    // Lab's device, and the one the token test registered there; none of Default's five.
    expect(await page.locator('#device-counts dd[data-status="active"]').textContent()).toBe('2');
    expect(await page.locator('#exchange').count()).toBe(0);
    const controls = 'main button, main form, main input, main select, main textarea';
    expect(await page.locator(controls).count()).toBe(0);
    await axe(page, 'overview of a VA viewer');
    await screenshot(page, 'overview-va-viewer');
    await go(page, 'tokens');
    expect(await page.locator('#tokens tbody tr').count()).toBeGreaterThan(0);
    expect(new Set(await page.locator('#tokens tbody td:nth-child(2)').allTextContents())).toEqual(new Set(['Lab']));
    expect(await page.locator(controls).count()).toBe(0);
    await axe(page, 'tokens of a VA viewer');
    await context.close();
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    expectCleanPages(site);
  });
});
