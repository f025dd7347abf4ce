import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ADMIN, expectCleanPages, useConsole } from './browser.js';
import { recordSecret } from '../helpers/secrets.js';

/**
 * The Requests page in Chromium: a user without a role on Lab asks for one through the page,
 * the admin approves it through the page, and the requester, once the page is loaded again,
 * sees Lab; a request denied with a reason shows the requester that reason and who decided.
 */
const REQUESTER = { name: 'rita', password: 'console passphrase four' };
/** A user whose roles were all taken away: it may only ask for one. */
const NO_ROLE = { name: 'nils', password: 'console passphrase five' };

describe('the Requests page', () => {
  const site = useConsole(async (s, { defaultVa }) => {
    recordSecret('password', REQUESTER.password);
    await s.users.add({ ...REQUESTER, roles: [{ role: 'va-viewer', vaId: defaultVa }] }, 'test');
    recordSecret('password', NO_ROLE.password);
    const nils = await s.users.add({ ...NO_ROLE, roles: [{ role: 'va-viewer', vaId: defaultVa }] }, 'test');
    s.db.prepare('DELETE FROM user_roles WHERE user_id = ?').run(nils.id);
  });

  /** Waits for the page's next answer in its notice, and gives its text. */
  const answer = async (page: Page, act: () => Promise<void>) => {
    const before = await page.locator('#access-notice').getAttribute('data-answer');
    await act();
    await site.answered(page, '#access-notice', before);
    return (await page.locator('#access-notice').textContent()) ?? '';
  };
  const vaOptions = async (page: Page) => {
    await site.go(page, 'devices');
    return page.locator('#device-va option').allTextContents();
  };

  let requester: Awaited<ReturnType<typeof site.newPage>>;

  it('when a user with no role signs in, then it lands on Requests, is offered no page it cannot read, and no request fails', async () => {
    const { page } = await site.newPage();
    const failed: string[] = [];
    page.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
    await site.signIn(page, NO_ROLE);
    expect(page.url()).toContain('#/access');
    expect(await page.locator('main h1').textContent()).toBe('Access requests');
    expect(await page.locator('.who-roles').textContent()).toBe(' · no role yet');
    expect(await page.locator('#request-va option').allTextContents()).toEqual(['Default', 'Lab']);
    const nav = page.getByRole('navigation', { name: 'Main' }).locator('a');
    expect(await Promise.all((await nav.all()).map((a) => a.getAttribute('href')))).toEqual(['#/access', '#/notifications']);
    // Not a settler of anything: no count is asked for.
    expect(await page.locator('#requests-waiting').count()).toBe(0);
    // Overview's address typed by hand: why not, and no data asked for.
    await page.evaluate("location.hash = '#/overview'");
    await page.locator('main[data-ready="true"] .notice-error', { hasText: 'no role on any virtual account' }).waitFor();
    expect(failed).toEqual([]);
    await site.axe(page, 'a user with no role on Requests');
  });

  it('when a user asks for access to Lab through the page, then a short justification is refused in the page and a good one waits as pending', async () => {
    requester = await site.newPage();
    const { page, context } = requester;
    await site.signIn(page, REQUESTER);
    expect(await vaOptions(page)).toEqual(['All', 'Default']);
    await site.go(page, 'access');
    expect(await page.locator('#request-va option').allTextContents()).toEqual(['Default', 'Lab']);
    expect(await page.locator('#my-requests').textContent()).toContain('You have made no access request.');

    await page.getByLabel('Virtual account').selectOption({ label: 'Lab' });
    await page.getByLabel('Justification').fill('lab');
    expect(await answer(page, () => page.getByRole('button', { name: 'Request access' }).click())).toContain('at least 10 characters');
    expect((await site.api<{ items: unknown[] }>(context, '/access/requests/mine')).items).toEqual([]);

    await page.getByLabel('Justification').fill('I test the new switches on the Lab bench.');
    expect(await answer(page, () => page.getByRole('button', { name: 'Request access' }).click())).toContain('Access to Lab requested');
    const row = page.locator('#mine tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.getAttribute('data-state')).toBe('pending');
    expect(await row.locator('th').textContent()).toBe('Lab');
    await site.axe(page, 'requests page of a requester');
  });

  it('when the admin approves it through the page, then the requester, loading its page again, sees Lab', async () => {
    const { page } = await site.newPage();
    await site.signIn(page, ADMIN);
    // Read when the page loads: rita's request waits for the admin.
    await page.locator('#requests-waiting[data-count="1"]').waitFor({ state: 'attached' });
    expect(await page.locator('#requests-waiting').textContent()).toBe('1 request waits for you');
    await site.go(page, 'access');
    const row = page.locator('#pending tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.locator('th').textContent()).toBe('rita');
    expect(await row.locator('.justification').textContent()).toBe('I test the new switches on the Lab bench.');
    await site.axe(page, 'requests page of an approver');
    await site.screenshot(page, 'access');
    await page.getByLabel('Role to grant rita on Lab').selectOption('va-viewer');
    expect(await answer(page, () => page.getByRole('button', { name: 'Approve rita for Lab' }).click())).toContain('rita now holds va-viewer on Lab.');
    expect(await page.locator('#pending-requests').textContent()).toContain('No request waits for you.');
    // The count beside Requests follows at once, on the same page.
    await page.locator('#requests-waiting[data-count="0"]').waitFor({ state: 'attached' });
    expect(await page.locator('#requests-waiting').textContent()).toBe('');

    const r = requester.page;
    await r.reload();
    await r.locator('main[data-ready="true"]').waitFor();
    expect(await vaOptions(r)).toEqual(['All', 'Default', 'Lab']);
    await site.go(r, 'access');
    expect(await r.locator('#mine tbody tr').getAttribute('data-state')).toBe('approved');
    expect(await r.locator('#mine .outcome').textContent()).toBe('granted va-viewer by ada');
  });

  it('when the admin denies a request with a reason through the page, then the requester reads the reason and who decided', async () => {
    const r = requester.page;
    await r.getByLabel('Virtual account').selectOption({ label: 'Default' });
    await r.getByLabel('Role', { exact: true }).selectOption('va-admin');
    await r.getByLabel('Justification').fill('I would like to make the registration tokens.');
    expect(await answer(r, () => r.getByRole('button', { name: 'Request access' }).click())).toContain('Access to Default requested');

    const { page } = await site.newPage();
    await site.signIn(page, ADMIN);
    await site.go(page, 'access');
    expect(await answer(page, () => page.getByRole('button', { name: 'Deny rita for Default' }).click())).toContain('Give the reason rita will read');
    expect(await page.locator('#pending tbody tr').count()).toBe(1);
    await page.getByLabel('Reason to deny rita on Default').fill('Tokens are made by the network team.');
    expect(await answer(page, () => page.getByRole('button', { name: 'Deny rita for Default' }).click())).toContain("rita's request for Default denied.");

    await r.reload();
    await r.locator('main[data-ready="true"]').waitFor();
    const denied = r.locator('#mine tbody tr[data-state="denied"]');
    expect(await denied.locator('.outcome').textContent()).toBe('denied by ada: Tokens are made by the network team.');
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    expectCleanPages(site);
  });
});
