import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { capturingLogger, recordSecret } from '../helpers/secrets.js';
import { DAY, TAG, TAG2 } from '../helpers/harness.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { tempDir } from '../helpers/temp.js';
import { pngColours } from '../helpers/png.js';
import { seed } from '../history/series.js';

/**
 * The operator console in Debian's Chromium, headless, against a real collector process with
 * seeded data: sign-in and out, the overview against the API, a token round trip, what a
 * VA-scoped viewer is offered, CSRF, axe-core on every page, and the screenshots the README shows
 * (`npm run screenshots` writes them to docs/screenshots; here they go to a temp folder).
 */
const CHROMIUM = '/usr/bin/chromium';
const ADMIN = { name: 'ada', password: 'console passphrase one' };
const VIEWER = { name: 'vic', password: 'console passphrase two' };
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const shots = process.env.OUTPOST_SCREENSHOT_DIR ? resolve(process.env.OUTPOST_SCREENSHOT_DIR) : tempDir('screenshots');

/** Deregistered devices seeded beyond the devices table's page of 25. */
const BULK = 30;

interface Row {
  va: string;
  tag: string;
  inUse: string;
  owned: string;
}

describe('the operator console in a real browser', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  let server: ServerProcess;
  let browser: Browser;
  let labVa = '';
  const problems: string[] = [];
  const requested: string[] = [];

  beforeAll(async () => {
    // Seeded through the services on the data folder, then served by the real collector.
    const s = buildServices(loadConfig({ env, overrides: { http: { port: 0 } } as never }), { logger: capturingLogger() });
    const def = s.accounts.list()[0]!.id;
    labVa = s.accounts.createVa({ name: 'Lab' }, 'test').id;
    const now = Date.now();
    s.licenses.addLine({ vaId: def, tag: TAG, displayName: 'DNA Network Stack', kind: 'perpetual', quantity: 5, startsAt: now - 30 * DAY, endsAt: null }, 'test');
    s.licenses.addLine({ vaId: def, tag: TAG2, displayName: 'Network Advantage', kind: 'subscription', quantity: 100, startsAt: now - 30 * DAY, endsAt: now + 300 * DAY }, 'test');
    s.licenses.addLine({ vaId: labVa, tag: TAG, displayName: 'DNA Network Stack', kind: 'perpetual', quantity: 10, startsAt: now - 30 * DAY, endsAt: null }, 'test');
    for (const u of [ADMIN, VIEWER]) recordSecret('password', u.password);
    await s.users.add({ ...ADMIN, roles: [{ role: 'admin' }] }, 'test');
    await s.users.add({ ...VIEWER, roles: [{ role: 'va-viewer', vaId: labVa }] }, 'test');
    const tokenFor = (vaId: string, description: string) => s.tokens.create({ vaId, description, expiresInDays: 30, maxUses: 10 }, 'test').secret;
    // Retired devices of an imported RUM file: more than a page of the devices table.
    for (let i = 1; i <= BULK; i++) {
      s.devices.repo.insert({
        id: `dev_bulk${String(i).padStart(3, '0')}`, va_id: def, udi_pid: 'ISR4451-X/K9', udi_serial: `OLD-${String(i).padStart(3, '0')}`, hostname: `old-${i}`,
        software_version: '17.3', public_key: null, pending_public_key: null, pending_since: null, status: 'deregistered', source: 'rum',
        registered_at: now - 60 * DAY, last_seen_at: null, last_seq: null,
      });
    }
    // Daily history: Advantage rising 2 a day towards its 100 owned (a forecast crossing), DNA past its 5;
    // today's peak is what the devices below report (the collector samples before they do).
    seed(s, def, TAG2, Array.from({ length: 20 }, (_, i) => 50 + 2 * i), now, 100);
    seed(s, def, TAG, [3, 5, 6, 8, 9], now, 5);
    s.history.repo.upsert([[TAG2, 90, 100], [TAG, 9, 5]].map(([tag, n, owned]) => ({ va_id: def, tag: tag as string, day: s.history.today(), in_use: n as number, owned: owned as number, updated_at: now })));
    const defToken = tokenFor(def, 'Default rack');
    const labToken = tokenFor(labVa, 'Lab bench');
    s.db.close();

    server = await serve(dir, env);
    const collectorId = ((await (await fetch(`${server.url}/device/v1/collector`)).json()) as { collectorId: string }).collectorId;
    const report = async (token: string, serial: string, tag: string, count: number) => {
      const d = new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial });
      expect((await d.register(token)).status).toBe(201);
      expect((await d.sendReport(d.report(tag, count))).status).toBe(200);
    };
    // Default: 9 DNA in use of 5 owned (short by 4), 90 Advantage of 100; Lab: 2 DNA of 10.
    for (const i of [1, 2, 3]) await report(defToken, `UI-DEF-${i}`, TAG, 3);
    await report(defToken, 'UI-DEF-4', TAG2, 90);
    await report(labToken, 'UI-LAB-1', TAG, 2);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    mkdirSync(shots, { recursive: true });
  }, 40_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    context.on('request', (r) => requested.push(r.url()));
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    return { context, page };
  }

  async function signIn(page: Page, who: { name: string; password: string }): Promise<void> {
    await page.goto(`${server.url}/`);
    await page.getByLabel('User name').fill(who.name);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main[data-ready="true"]').waitFor();
  }

  const NAV: Record<string, string> = { overview: 'Overview', tokens: 'Registration tokens', devices: 'Devices', licenses: 'Licenses' };
  async function go(page: Page, hash: string): Promise<void> {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: NAV[hash]!, exact: true }).click();
    await page.locator(`main[data-ready="true"] h1`).waitFor();
    expect(page.url()).toContain(`#/${hash}`);
  }

  /** axe-core, injected into the page (not as a script element: the page's policy refuses inline scripts). */
  async function axe(page: Page, what: string): Promise<void> {
    await page.evaluate(axeSource);
    const found = (await page.evaluate(
      "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) })))",
    )) as { id: string; impact: string; nodes: string[] }[];
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical'), what).toEqual([]);
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(join(shots, `${name}.png`), png);
    expect(pngColours(png), `${name}.png is blank`).toBeGreaterThan(8);
  }

  it('when an admin signs in, then the overview shows the API\'s numbers, the shortage first, and signing out ends the session', async () => {
    const { context, page } = await newPage();
    await page.goto(`${server.url}/`);
    await page.getByLabel('User name').waitFor();
    await axe(page, 'sign-in page');
    await screenshot(page, 'login');
    await signIn(page, ADMIN);
    expect(await page.locator('h1').textContent()).toBe('Overview');

    const get = async (path: string) => (await context.request.get(`${server.url}/api/v1${path}`)).json();
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
    expect((await context.request.get(`${server.url}/api/v1/auth/whoami`)).status()).toBe(401);
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

    const listed = ((await (await context.request.get(`${server.url}/api/v1/tokens`)).json()) as { items: { id: string; description: string; vaId: string; state: string }[] }).items;
    const made = listed.find((t) => t.description === 'Rack 7 switches')!;
    expect(made).toMatchObject({ vaId: labVa, state: 'active' });
    const row = page.locator(`#tokens tr[data-token="${made.id}"]`);
    expect(await row.textContent()).toContain('0 of 2');
    // The secret shown is the real one: a device registers with it.
    const collectorId = ((await (await fetch(`${server.url}/device/v1/collector`)).json()) as { collectorId: string }).collectorId;
    expect((await new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: 'UI-TOK-1' }).register(secret)).status).toBe(201);
    // Shown once: after a reload, no page holds it.
    await page.reload();
    await page.locator('main[data-ready="true"]').waitFor();
    expect(await page.content()).not.toContain(secret);

    // The list is slow to come back: the notice must still not run ahead of the table (a race CI once lost).
    await page.route(`${server.url}/api/v1/tokens`, async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 400));
      await r.continue();
    });
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke Rack 7 switches' }).click();
    await page.locator('#tokens-notice', { hasText: 'revoked' }).waitFor();
    expect(await page.locator(`#tokens tr[data-token="${made.id}"] .state`).textContent()).toBe('revoked');
    const after = ((await (await context.request.get(`${server.url}/api/v1/tokens`)).json()) as { items: { id: string; state: string }[] }).items;
    expect(after.find((t) => t.id === made.id)!.state).toBe('revoked');
    expect((await new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: 'UI-TOK-2' }).register(secret)).status).toBe(403);
    await axe(page, 'tokens page');
    await screenshot(page, 'tokens');

    // The session cookie alone changes nothing: without the page's CSRF token the API refuses.
    const body = { vaId: labVa, description: 'forged', expiresInDays: 1, maxUses: 1 };
    const attempts: Record<string, string>[] = [{ origin: server.url }, { origin: server.url, 'x-csrf-token': 'not-the-token' }];
    for (const headers of attempts) {
      const forged = await context.request.post(`${server.url}/api/v1/tokens`, { data: body, headers });
      expect(forged.status()).toBe(403);
      expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('csrf_token_missing');
    }
    const all = ((await (await context.request.get(`${server.url}/api/v1/tokens`)).json()) as { items: { description: string }[] }).items;
    expect(all.some((t) => t.description === 'forged')).toBe(false);
    await context.close();
  });

  it('when an admin searches and filters the devices, then the table, its pages and its CSV link follow the collector\'s answer', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'devices');
    const serials = () => page.locator('#devices tbody th.serial').allTextContents();
    const answer = async () => (await page.locator('#devices-results').getAttribute('data-answer')) ?? '';
    const ready = async (before: string) => page.waitForFunction(
      // Runs in the page (serialised: no closure); the tests' tsconfig has no DOM types, and the CSP forbids a string.
      ([sel, b]) => (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document.querySelector(sel)?.getAttribute('data-answer') !== b,
      ['#devices-results', before] as const,
    );
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
    const api = ((await (await context.request.get(`${server.url}/api/v1/devices?status=deregistered&sort=serial&limit=25`)).json()) as { items: { udi: { serial: string } }[] }).items;
    expect(first).toEqual(api.map((d) => d.udi.serial));
    expect(first[0]).toBe('OLD-001');
    const href = await page.locator('#devices-csv').getAttribute('href');
    expect(href).toBe('/api/v1/devices.csv?status=deregistered');
    const csv = await (await context.request.get(`${server.url}${href}`)).text();
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
    const get = async (path: string) => (await context.request.get(`${server.url}/api/v1${path}`)).json();
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
    await page.waitForFunction(
      // Runs in the page (serialised: no closure); the tests' tsconfig has no DOM types, and the CSP forbids a string.
      ([sel, b]) => (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document.querySelector(sel)?.getAttribute('data-answer') !== b,
      ['#history-detail', before] as const,
    );
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
    expect(await page.locator('#compliance tbody tr').first().getAttribute('data-va')).toBe(labVa);
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
    expect(problems).toEqual([]);
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => new URL(u).origin !== server.url)).toEqual([]);
  });
});
