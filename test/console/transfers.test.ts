import { describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { TAG, TAG2 } from '../helpers/harness.js';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * The console's Transfers page (see browser.ts for the seeded site; the upstream is an Outpost
 * upstream): the list as the API gives it, a transfer requested through the form, one over what
 * is available refused in words, one settled by hand as reverted, and what a viewer of Lab sees.
 * Seeded besides: Lab → Default, 1 DNA, refused by the upstream; Default → Lab, 2 Advantage,
 * provisional, whose Cisco transfer call was accepted (the site had Cisco's cloud as upstream).
 */
interface Transfer {
  id: string;
  fromVaId: string;
  toVaId: string;
  tag: string;
  quantity: number;
  state: string;
  requestedBy: string;
  requestedAt: string;
  settledBy: string | null;
  refusal: string | null;
  ciscoAcceptedAt: string | null;
}
interface Compliance {
  items: { vaId: string; tags: { tag: string; owned: number | null; inUse: number }[] }[];
}

describe('license transfers in the operator console', () => {
  const seeded = { refused: '', cisco: '' };
  const site = useConsole((s, { defaultVa, labVa }) => {
    const t = s.licenses.transfers;
    seeded.refused = t.request({ fromVaId: labVa, toVaId: defaultVa, tag: TAG, quantity: 1, reason: 'bench spare' }, null, 'test').id;
    s.db.transaction(() => t.settle([{ transferId: seeded.refused, status: 'refused', reason: 'not enough available upstream' }], 'upstream', []))();
    seeded.cisco = t.request({ fromVaId: defaultVa, toVaId: labVa, tag: TAG2, quantity: 2 }, null, 'test').id;
    // As Cisco's transfer call leaves it when Cisco accepts it (cssm/transfers.ts).
    s.db.prepare('UPDATE license_transfers SET cisco_sent_at = ?, cisco_target_before = 0 WHERE id = ?').run(Date.now() - 3_600_000, seeded.cisco);
  });
  const { newPage, signIn, go, axe, screenshot } = site;
  const transfers = async (context: BrowserContext) => (await site.api<{ items: Transfer[] }>(context, '/licenses/transfers')).items;
  /** Per VA, what it owns and has in use of a tag. */
  const holding = async (context: BrowserContext, vaId: string, tag: string) => {
    const t = (await site.api<Compliance>(context, '/compliance')).items.find((c) => c.vaId === vaId)?.tags.find((x) => x.tag === tag);
    return { owned: t?.owned ?? 0, inUse: t?.inUse ?? 0 };
  };
  const total = async (context: BrowserContext, tag: string) =>
    (await site.api<Compliance>(context, '/compliance')).items.flatMap((c) => c.tags).filter((t) => t.tag === tag).reduce((n, t) => n + (t.owned ?? 0), 0);
  const rows = (page: Page) => page.locator('#transfers tbody tr');
  const row = (page: Page, id: string) => page.locator(`#transfers tbody tr[data-transfer="${id}"]`);
  /** The page's answer after an action: its notice, which comes only once the page is read again. */
  const noticeAfter = async (page: Page, before: string | null) => {
    await site.answered(page, '#transfers-notice', before);
    return (await page.locator('#transfers-notice').textContent()) ?? '';
  };
  /** The refusals a test causes on purpose: the browser logs each failed request; any other problem stays. */
  const expectRefusals = (statuses: number[]) => {
    const said = site.problems.filter((p) => /Failed to load resource: the server responded with a status of (403|404|409)/.test(p));
    expect(said.map((p) => Number(/status of (\d+)/.exec(p)![1]))).toEqual(statuses);
    for (const p of said) site.problems.splice(site.problems.indexOf(p), 1);
  };
  const shownList = (page: Page) =>
    rows(page).evaluateAll((trs) => trs.map((tr) => ({
      id: tr.getAttribute('data-transfer'),
      state: tr.getAttribute('data-state'),
      vas: tr.querySelector('.vas')?.textContent,
      tag: tr.querySelector('.license .tag')?.textContent,
      quantity: tr.querySelector('.quantity')?.textContent,
      requestedAt: tr.querySelector('.requested time')?.getAttribute('datetime'),
      by: tr.querySelector('.by')?.textContent,
    })));
  const expectedList = (items: Transfer[], name: (id: string) => string) =>
    items.map((t) => ({
      id: t.id, state: t.state, vas: `${name(t.fromVaId)} → ${name(t.toVaId)}`, tag: t.tag, quantity: t.quantity.toLocaleString('en'),
      requestedAt: t.requestedAt, by: t.requestedBy.replace(/^user:/, '').replace(/ \(session .*\)$/, ''),
    }));
  const vaName = (id: string) => (id === site.labVa ? 'Lab' : 'Default');
  let made = '';

  it("when an admin opens Transfers, then the list is the API's, newest first, with how each was settled and the upstream's side", async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'transfers');
    const api = await transfers(context);
    expect(api.map((t) => t.id)).toEqual([seeded.cisco, seeded.refused]);
    expect(await shownList(page)).toEqual(expectedList(api, vaName));

    const refused = row(page, seeded.refused);
    expect(await refused.locator('.state').textContent()).toBe('Refused, reverted');
    expect(await refused.locator('.settled').textContent()).toMatch(/^Refused by the upstream, .*: not enough available upstream$/);
    expect(await refused.locator('.license .name').textContent()).toBe('DNA Network Stack');
    expect(await refused.locator('.asked-reason').textContent()).toBe('“bench spare”');
    expect(await refused.getByRole('button').count()).toBe(0);
    const cisco = row(page, seeded.cisco);
    expect(await cisco.locator('.state').textContent()).toBe('Provisional');
    expect(await cisco.locator('.settled').textContent()).toBe('Not yet');
    const accepted = api.find((t) => t.id === seeded.cisco)!.ciscoAcceptedAt!;
    expect(await cisco.locator('.upstream time').getAttribute('datetime')).toBe(accepted);
    expect(await cisco.locator('.upstream').textContent()).toMatch(/^Cisco accepted its call on .*: Cisco may still apply it\.$/);
    expect(await cisco.getByRole('button', { name: /^Settle…/ }).count()).toBe(1);
    // Both ends are VAs the admin operates: the form is offered.
    expect(await page.locator('#transfer-form').count()).toBe(1);
    await axe(page, 'transfers page');
    await screenshot(page, 'transfers');

    // Settling the Cisco-accepted one: the dialog says Cisco may still apply it; cancelled, nothing changes.
    await cisco.getByRole('button', { name: /^Settle…/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.locator('#settle-cisco').textContent()).toContain('Cisco may still apply it. Reverting it here does not take it back at Cisco');
    await axe(page, 'settle dialog');
    await screenshot(page, 'transfers-settle');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await transfers(context)).find((t) => t.id === seeded.cisco)!.state).toBe('provisional');
    await context.close();
  });

  it("when an admin requests a transfer from the Licenses page's link, then both VAs' compliance moved by the quantity, the account's total did not, and the list shows it first", async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    const [lab, def, sum] = [await holding(context, site.labVa, TAG), await holding(context, site.defaultVa, TAG), await total(context, TAG)];
    await go(page, 'licenses');
    await page.getByRole('link', { name: 'Transfer… DNA Network Stack from Lab' }).click();
    await page.locator('main[data-ready="true"] #transfer-form').waitFor();
    expect(page.url()).toContain('#/transfers/');
    // Prefilled from the row: Lab's DNA, with what it has available now.
    expect(await page.getByLabel('From virtual account').inputValue()).toBe(site.labVa);
    expect(await page.getByLabel('License').inputValue()).toBe(TAG);
    expect(await page.locator('#transfer-available').textContent()).toBe(`Lab has ${lab.owned - lab.inUse} of DNA Network Stack available now (${lab.owned} owned, ${lab.inUse} in use).`);
    // Only the VAs it may operate on, the source left out of the destinations.
    expect(await page.locator('#transfer-to option').allTextContents()).toEqual(['Default']);
    await page.getByLabel('Quantity').fill('3');
    await page.getByLabel('Reason (optional)').fill('campus needs three');
    const before = await page.locator('#transfers-notice').getAttribute('data-answer');
    await page.getByRole('button', { name: 'Request transfer' }).click();
    expect(await noticeAfter(page, before)).toBe('3 of DNA Network Stack transferred from Lab to Default: provisional until the upstream confirms it.');

    const api = await transfers(context);
    made = api[0]!.id;
    expect(api[0]).toMatchObject({ fromVaId: site.labVa, toVaId: site.defaultVa, tag: TAG, quantity: 3, state: 'provisional' });
    expect(api.map((t) => t.id)).toEqual([made, seeded.cisco, seeded.refused]);
    // The page was read again before the notice: the new transfer is already its first row.
    expect(await shownList(page)).toEqual(expectedList(api, vaName));
    expect(await row(page, made).locator('.upstream').textContent()).toBe('Outpost upstream: travels in the next usage bundle or sync.');
    expect(await page.locator('#transfer-available').textContent()).toContain(`Lab has ${lab.owned - 3 - lab.inUse} of DNA Network Stack available now`);
    expect(await holding(context, site.labVa, TAG)).toEqual({ owned: lab.owned - 3, inUse: lab.inUse });
    expect(await holding(context, site.defaultVa, TAG)).toEqual({ owned: def.owned + 3, inUse: def.inUse });
    expect(await total(context, TAG)).toBe(sum);
    await axe(page, 'transfers page after a request');
    await context.close();
  });

  it('when an admin asks for more than the source has available, then the refusal names the available quantity in words and nothing changed', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'transfers');
    const [listBefore, lab, def] = [await transfers(context), await holding(context, site.labVa, TAG), await holding(context, site.defaultVa, TAG)];
    const available = lab.owned - lab.inUse;
    await page.getByLabel('From virtual account').selectOption({ label: 'Lab' });
    await page.getByLabel('License').selectOption(TAG);
    await page.getByLabel('Quantity').fill(String(available + 20));
    const before = await page.locator('#transfers-notice').getAttribute('data-answer');
    await page.getByRole('button', { name: 'Request transfer' }).click();
    expect(await noticeAfter(page, before)).toBe(
      `Not transferred, nothing changed: Lab has ${available} of DNA Network Stack available (${lab.owned} owned now, ${lab.inUse} in use): it cannot transfer ${available + 20}. Ask for at most what is available.`,
    );
    expect(await page.locator('#transfers-notice [role="alert"]').count()).toBe(1);
    expect(await transfers(context)).toEqual(listBefore);
    expect(await holding(context, site.labVa, TAG)).toEqual(lab);
    expect(await holding(context, site.defaultVa, TAG)).toEqual(def);
    expectRefusals([409]);
    await axe(page, 'transfers page, a refusal');
    await context.close();
  });

  it('when an admin settles the transfer as reverted in the dialog, then the quantities are back and the list says who reverted it and why', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'transfers');
    const [lab, def, sum] = [await holding(context, site.labVa, TAG), await holding(context, site.defaultVa, TAG), await total(context, TAG)];
    await row(page, made).getByRole('button', { name: /^Settle…/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Settle the transfer of 3 DNA Network Stack from Lab to Default' });
    await dialog.waitFor();
    // Never sent to Cisco: no Cisco warning.
    expect(await dialog.locator('#settle-cisco').count()).toBe(0);
    // A reason too short is said, and nothing is sent.
    await dialog.getByLabel(/^Reverted/).check();
    await dialog.getByLabel('Reason').fill('undo');
    await dialog.getByRole('button', { name: 'Settle transfer' }).click();
    expect(await dialog.locator('#settle-problem').textContent()).toBe('Reason: say why you settle it by hand, in at least 10 characters.');
    expect((await transfers(context))[0]!.state).toBe('provisional');
    await dialog.getByLabel('Reason').fill('requested by mistake, undo it');
    const before = await page.locator('#transfers-notice').getAttribute('data-answer');
    await dialog.getByRole('button', { name: 'Settle transfer' }).click();
    expect(await noticeAfter(page, before)).toBe('The transfer of 3 DNA Network Stack from Lab to Default was reverted by hand.');
    await dialog.waitFor({ state: 'detached' });

    const t = (await transfers(context)).find((x) => x.id === made)!;
    expect(t).toMatchObject({ state: 'refused', settledBy: 'manual', refusal: 'reverted by hand: requested by mistake, undo it' });
    expect(await holding(context, site.labVa, TAG)).toEqual({ owned: lab.owned + 3, inUse: lab.inUse });
    expect(await holding(context, site.defaultVa, TAG)).toEqual({ owned: def.owned - 3, inUse: def.inUse });
    expect(await total(context, TAG)).toBe(sum);
    expect(await row(page, made).locator('.state').textContent()).toBe('Reverted');
    expect(await row(page, made).locator('.settled').textContent()).toMatch(/^By hand by ada, .*: requested by mistake, undo it$/);
    expect(await row(page, made).locator('.upstream').textContent()).toBe('Never sent again.');
    expect(await row(page, made).getByRole('button').count()).toBe(0);
    await axe(page, 'transfers page after a revert');

    // Reverting the one whose Cisco call was accepted: the notice carries the collector's warning, and the row keeps it.
    const adv = await holding(context, site.labVa, TAG2);
    await row(page, seeded.cisco).getByRole('button', { name: /^Settle…/ }).click();
    await page.getByRole('dialog').getByLabel(/^Reverted/).check();
    await page.getByRole('dialog').getByLabel('Reason').fill('never shown by Cisco after a week');
    const again = await page.locator('#transfers-notice').getAttribute('data-answer');
    await page.getByRole('dialog').getByRole('button', { name: 'Settle transfer' }).click();
    expect(await noticeAfter(page, again)).toMatch(
      /^The transfer of 2 Network Advantage from Default to Lab was reverted by hand\. Cisco accepted this transfer's call on .*: Cisco may still apply it; check the virtual accounts in Cisco's portal\.$/,
    );
    expect(await holding(context, site.labVa, TAG2)).toEqual({ owned: adv.owned - 2, inUse: adv.inUse });
    expect(await row(page, seeded.cisco).locator('.state').textContent()).toBe('Reverted');
    expect(await row(page, seeded.cisco).locator('.upstream').textContent()).toMatch(/: Cisco may still apply it\.$/);
    await context.close();
  });

  it('when a viewer of Lab opens Transfers, then it sees the transfers touching Lab as the API lists them, with no form and no control', async () => {
    const { context, page } = await newPage();
    await signIn(page, VIEWER);
    await go(page, 'transfers');
    const api = await transfers(context);
    expect(api.length).toBe(3);
    expect(api.every((t) => t.fromVaId === site.labVa || t.toVaId === site.labVa)).toBe(true);
    expect(await shownList(page)).toEqual(expectedList(api, vaName));
    expect(await page.locator('#transfer-form').count()).toBe(0);
    expect(await page.locator('#transfer-not-offered').textContent()).toContain('needs a role that may operate on both virtual accounts');
    expect(await page.locator('main button, main form, main input, main select, main textarea').count()).toBe(0);
    // The Cisco-accepted one is named so for a viewer too.
    expect(await row(page, seeded.cisco).locator('.upstream').textContent()).toContain('Cisco may still apply it.');
    // Named although Lab holds none of it now and Default is out of its sight.
    expect(await row(page, seeded.cisco).locator('.license .name').textContent()).toBe('Network Advantage');
    await axe(page, 'transfers page of a VA viewer');
    await screenshot(page, 'transfers-viewer');
    // No "Transfer…" link on its Licenses page either.
    await go(page, 'licenses');
    expect(await page.locator('#licenses a.transfer-link').count()).toBe(0);
    await context.close();
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    expectCleanPages(site);
  });
});
