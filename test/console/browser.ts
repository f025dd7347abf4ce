import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
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
import type { Services } from '../../src/services.js';

/**
 * The operator console's browser tests share one seeded site, served by a real collector process
 * and looked at through Debian's Chromium, headless. Each page's test file calls useConsole() in
 * its describe block; the site is:
 * - Default: 9 DNA in use of 5 owned (short by 4), 90 Advantage of 100 with a daily history
 *   rising towards it (a forecast crossing), and 30 retired devices (more than a page);
 * - Lab: 2 DNA of 10 owned;
 * - users ada (admin) and vic (va-viewer of Lab).
 * `npm run screenshots` writes the screenshots to docs/screenshots; here they go to a temp folder.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const ADMIN = { name: 'ada', password: 'console passphrase one' };
export const VIEWER = { name: 'vic', password: 'console passphrase two' };
/** Deregistered devices seeded beyond the devices table's page of 25. */
export const BULK = 30;

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface ConsoleSite {
  server: ServerProcess;
  browser: Browser;
  collectorId: string;
  defaultVa: string;
  labVa: string;
  /** Registration token secrets of the two VAs (10 uses each). */
  tokens: { default: string; lab: string };
  /** What every page logged as an error, and every URL a page asked for. */
  problems: string[];
  requested: string[];
  newPage(): Promise<{ context: BrowserContext; page: Page }>;
  signIn(page: Page, who: { name: string; password: string }): Promise<void>;
  /** Follows the main navigation's link to #/<path> and waits for the page to be drawn. */
  go(page: Page, path: string): Promise<void>;
  /** axe-core finds no serious or critical violation. */
  axe(page: Page, what: string): Promise<void>;
  /** A full-page screenshot, which fails when it is blank. */
  screenshot(page: Page, name: string): Promise<void>;
  /** GET /api/v1<path> with the context's session, parsed. */
  api<T>(context: BrowserContext, path: string): Promise<T>;
  /** Waits until the element's data-answer differs from `before` (a page marks each answer it draws). */
  answered(page: Page, selector: string, before: string | null): Promise<void>;
}

/**
 * Registers the beforeAll/afterAll that seed the site, start the collector and the browser, and
 * stop them; the returned object's fields are set once beforeAll has run. `extraSeed` adds to
 * the site through the services before the collector starts.
 */
export function useConsole(
  extraSeed?: (s: Services, site: { defaultVa: string; labVa: string }) => void | Promise<void>,
  opts: { env?: Record<string, string> } = {},
): ConsoleSite {
  const dir = tempDataDir();
  const env = { ...envFor(dir), ...opts.env };
  const shots = process.env.OUTPOST_SCREENSHOT_DIR ? resolve(process.env.OUTPOST_SCREENSHOT_DIR) : tempDir('screenshots');
  const site = { problems: [] as string[], requested: [] as string[] } as ConsoleSite;

  site.newPage = async () => {
    const context = await site.browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.server.url });
    context.on('request', (r) => site.requested.push(r.url()));
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && site.problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => site.problems.push(`page error: ${e.message}`));
    return { context, page };
  };
  site.signIn = async (page, who) => {
    await page.goto(`${site.server.url}/`);
    await page.getByLabel('User name').fill(who.name);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main[data-ready="true"]').waitFor();
  };
  site.go = async (page, path) => {
    await page.getByRole('navigation', { name: 'Main' }).locator(`a[href="#/${path}"]`).click();
    // The page before is ready too until the hash change redraws: the link marked current is the new page's header, drawn with its main.
    await page.getByRole('navigation', { name: 'Main' }).locator(`a[href="#/${path}"][aria-current="page"]`).waitFor();
    await page.locator('main[data-ready="true"] h1').waitFor();
    expect(page.url()).toContain(`#/${path}`);
  };
  // Injected by evaluation, not as a script element: the page's policy refuses inline scripts.
  site.axe = async (page, what) => {
    await page.evaluate(axeSource);
    const found = (await page.evaluate(
      "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) })))",
    )) as { id: string; impact: string; nodes: string[] }[];
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical'), what).toEqual([]);
  };
  site.screenshot = async (page, name) => {
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(join(shots, `${name}.png`), png);
    expect(pngColours(png), `${name}.png is blank`).toBeGreaterThan(8);
  };
  site.api = async <T>(context: BrowserContext, path: string) => (await (await context.request.get(`${site.server.url}/api/v1${path}`)).json()) as T;
  site.answered = async (page, selector, before) => {
    await page.waitForFunction(
      // Runs in the page (serialised: no closure); the tests' tsconfig has no DOM types, and the CSP forbids a string.
      ([sel, b]) => (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document.querySelector(sel)?.getAttribute('data-answer') !== b,
      [selector, before] as const,
    );
  };

  beforeAll(async () => {
    // Seeded through the services on the data folder, then served by the real collector.
    const s = buildServices(loadConfig({ env, overrides: { http: { port: 0 } } as never }), { logger: capturingLogger() });
    const def = s.accounts.list()[0]!.id;
    const labVa = s.accounts.createVa({ name: 'Lab' }, 'test').id;
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
    site.tokens = { default: tokenFor(def, 'Default rack'), lab: tokenFor(labVa, 'Lab bench') };
    await extraSeed?.(s, { defaultVa: def, labVa });
    s.db.close();
    site.defaultVa = def;
    site.labVa = labVa;

    site.server = await serve(dir, env);
    site.collectorId = ((await (await fetch(`${site.server.url}/device/v1/collector`)).json()) as { collectorId: string }).collectorId;
    const report = async (token: string, serial: string, tag: string, count: number) => {
      const d = new SimulatedDevice(site.server.url, site.collectorId, { pid: 'C9300-24T', serial });
      expect((await d.register(token)).status).toBe(201);
      expect((await d.sendReport(d.report(tag, count))).status).toBe(200);
    };
    // Default: 9 DNA in use of 5 owned (short by 4), 90 Advantage of 100; Lab: 2 DNA of 10.
    for (const i of [1, 2, 3]) await report(site.tokens.default, `UI-DEF-${i}`, TAG, 3);
    await report(site.tokens.default, 'UI-DEF-4', TAG2, 90);
    await report(site.tokens.lab, 'UI-LAB-1', TAG, 2);

    site.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    mkdirSync(shots, { recursive: true });
  }, 40_000);

  afterAll(async () => {
    await site.browser?.close();
    await site.server?.stop();
  });
  return site;
}

/** The last test of a page's file: no page logged an error, and none asked any host but the collector. */
export function expectCleanPages(site: ConsoleSite): void {
  expect(site.problems).toEqual([]);
  expect(site.requested.length).toBeGreaterThan(10);
  expect(site.requested.filter((u) => new URL(u).origin !== site.server.url)).toEqual([]);
}
