import { describe, expect, it } from 'vitest';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * Labels on the console's Devices page (see browser.ts for the seeded site): a label filter,
 * and each device's labels shown as chips whose text names them.
 */
describe('labels in the operator console', () => {
  const site = useConsole((s) => {
    const labels = s.labels;
    labels.create({ name: 'Retired rack', colour: '#cf222e', description: 'To recycle' }, 'test');
    labels.create({ name: 'Audit 2027', colour: '#0969da' }, 'test');
    labels.attach('Retired rack', { devices: ['dev_bulk001', 'dev_bulk002', 'dev_bulk003'] }, null, 'test');
    labels.attach('Audit 2027', { devices: ['dev_bulk002'] }, null, 'test');
  });
  const { newPage, signIn, go, axe, screenshot } = site;

  it('when an admin filters the devices by a label, then the labelled devices are listed with their labels as chips, and the CSV link carries the filter', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'devices');
    const results = page.locator('#devices-results');
    const before = (await results.getAttribute('data-answer')) ?? '';
    await page.getByLabel('Label').selectOption('Retired rack');
    await site.answered(page, '#devices-results', before);
    expect((await page.locator('#devices tbody th.serial').allTextContents()).sort()).toEqual(['OLD-001', 'OLD-002', 'OLD-003']);
    const chips = page.locator('#devices tbody tr[data-device="dev_bulk002"] .label-chip');
    expect(await chips.allTextContents()).toEqual(['Audit 2027', 'Retired rack']);
    await expect.poll(() => chips.first().isVisible()).toBe(true);
    // The colour is drawn beside the name, never in place of it.
    const swatch = await chips.first().locator('.label-swatch').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el).backgroundColor);
    expect(swatch).toBe('rgb(9, 105, 218)');
    expect(await page.locator('#devices-csv').getAttribute('href')).toBe('/api/v1/devices.csv?label=Retired+rack');
    await axe(page, 'devices filtered by label');
    await screenshot(page, 'devices-by-label');
    await context.close();
  });

  it("when a viewer of Lab filters by a label on Default's devices, then it sees none of them", async () => {
    const { context, page } = await newPage();
    await signIn(page, VIEWER);
    await go(page, 'devices');
    const before = (await page.locator('#devices-results').getAttribute('data-answer')) ?? '';
    await page.getByLabel('Label').selectOption('Retired rack');
    await site.answered(page, '#devices-results', before);
    await expect.poll(() => page.locator('#devices-summary').textContent()).toBe('No device matches.');
    await axe(page, 'no labelled device in reach');
    await context.close();
  });

  it('when the pages were used, then none logged an error or asked another host', () => {
    expectCleanPages(site);
  });
});
