import { describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { TAG } from '../helpers/harness.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { recordSecret } from '../helpers/secrets.js';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * A device's page in the console (see browser.ts for the seeded site): opened from the Devices
 * list, its identity, usage, reports and events as the API gives them; a move, a deregistration,
 * a re-key approved and one refused, each done through the page; and what a viewer of Lab sees.
 */
interface Device {
  id: string;
  vaId: string;
  udi: { pid: string; serial: string };
  hostname: string;
  softwareVersion: string;
  status: string;
  source: string;
  publicKey: string | null;
  pendingRekey: { since: string } | null;
  registeredAt: string;
  lastSeenAt: string | null;
}
interface Report {
  reportId: string;
  receivedAt: string;
  bytes: number;
  tags: string[];
  acknowledgements: { destination: string; state: string; at: string }[];
}
interface Compliance {
  items: { vaId: string; tags: { tag: string; inUse: number }[] }[];
}

const PAGED = 'UI-PAGED';
/** An admin of Lab and a viewer of Default: may change Lab's devices, see Default's, and move nothing into Default. */
const LAB_ADMIN = { name: 'val', password: 'console passphrase three' };
const PAGED_REPORTS = 12;

describe("a device's page in the operator console", () => {
  const site = useConsole(async (s, { defaultVa, labVa }) => {
    recordSecret('password', LAB_ADMIN.password);
    await s.users.add({ ...LAB_ADMIN, roles: [{ role: 'va-admin', vaId: labVa }, { role: 'va-viewer', vaId: defaultVa }] }, 'test');
  });
  const { newPage, signIn, go, axe, screenshot } = site;
  const get = <T>(context: BrowserContext, path: string) => site.api<T>(context, path);
  const deviceBySerial = async (context: BrowserContext, serial: string) =>
    (await get<{ items: Device[] }>(context, `/devices?q=${serial}`)).items.find((d) => d.udi.serial === serial)!;
  const inUse = async (context: BrowserContext, vaId: string) =>
    (await get<Compliance>(context, '/compliance')).items.find((c) => c.vaId === vaId)?.tags.find((t) => t.tag === TAG)?.inUse ?? 0;
  const body = (page: Page) => page.locator('#device-body');
  /** Opens a device's page by its address, as a bookmark would, and waits until it is drawn. */
  const open = async (page: Page, id: string, refused = false) => {
    await page.goto(`${site.server.url}/#/devices/${id}`);
    // Waits for this device's page, not for the page that was there before.
    await (refused
      ? page.locator('main[data-ready="true"] .notice-error')
      : page.locator('main[data-ready="true"] #device-identity dd[data-field="id"]', { hasText: id })).waitFor();
  };
  /** The page's answer after an action: its notice, which comes only once the page is drawn again. */
  const notice = (page: Page, text: string) => page.locator('#device-notice', { hasText: text }).waitFor();
  const field = (page: Page, name: string) => page.locator(`#device-identity dd[data-field="${name}"]`);
  /** The API refusals a test causes on purpose: the browser logs each failed load; any other problem stays. */
  const expectRefusals = (statuses: number[]) => {
    const said = site.problems.filter((p) => /Failed to load resource: the server responded with a status of (403|404|409)/.test(p));
    expect(said.map((p) => Number(/status of (\d+)/.exec(p)![1]))).toEqual(statuses);
    for (const p of said) site.problems.splice(site.problems.indexOf(p), 1);
  };

  it('when an admin opens a device from the Devices list, then its identity, use, reports and events are the API\'s', async () => {
    const { context, page } = await newPage();
    // A device with more reports than a page of the device's table.
    const paged = new SimulatedDevice(site.server.url, site.collectorId, { pid: 'C9300-48P', serial: PAGED });
    expect((await paged.register(site.tokens.default)).status).toBe(201);
    const t = Math.floor(Date.now() / 1000) - 3600;
    for (let i = 0; i < PAGED_REPORTS; i++) expect((await paged.sendReport(paged.report(TAG, 1, t + i * 60))).status).toBe(200);

    await signIn(page, ADMIN);
    await go(page, 'devices');
    const one = await deviceBySerial(context, 'UI-DEF-1');
    // From the keyboard: the row's serial is a link.
    await page.getByRole('link', { name: 'UI-DEF-1', exact: true }).focus();
    await page.keyboard.press('Enter');
    await body(page).and(page.locator('[data-answer]')).waitFor();
    expect(page.url()).toContain(`#/devices/${one.id}`);
    expect(await page.locator('h1').textContent()).toBe('Device UI-DEF-1');
    expect(await page.getByRole('navigation', { name: 'Main' }).locator('a[aria-current="page"]').getAttribute('href')).toBe('#/devices');

    const d = await get<Device>(context, `/devices/${one.id}`);
    expect(await field(page, 'pid').textContent()).toBe(d.udi.pid);
    expect(await field(page, 'serial').textContent()).toBe(d.udi.serial);
    expect(await field(page, 'hostname').textContent()).toBe(d.hostname);
    expect(await field(page, 'software').textContent()).toBe(d.softwareVersion);
    expect(await field(page, 'va').textContent()).toBe('Default');
    expect(await field(page, 'status').textContent()).toBe(d.status);
    expect(await field(page, 'source').textContent()).toBe('registered');
    expect(await field(page, 'registered').locator('time').getAttribute('datetime')).toBe(d.registeredAt);
    expect(await field(page, 'last-seen').locator('time').getAttribute('datetime')).toBe(d.lastSeenAt);
    expect(await field(page, 'id').textContent()).toBe(d.id);

    const usage = await get<{ items: { tag: string; count: number }[] }>(context, `/devices/${d.id}/usage`);
    expect(usage.items).toMatchObject([{ tag: TAG, count: 3 }]);
    const shownUsage = await page.locator('#device-usage tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-tag'), tr.querySelector('.count')?.textContent]));
    expect(shownUsage).toEqual(usage.items.map((u) => [u.tag, String(u.count)]));
    // Named as the licenses are, not by their tag.
    expect(await page.locator('#device-usage tbody th').textContent()).toBe('DNA Network Stack');

    await expectReportsShown(page, context, d.id, '');
    expect(await page.locator('#device-reports .acks li').first().getAttribute('data-state')).toBe('waiting');
    expect(await page.locator('#device-reports .acks li').first().textContent()).toContain('Outpost upstream: waiting since');
    const events = (await get<{ items: { id: number; type: string }[] }>(context, `/events?subject=${d.id}&limit=10`)).items;
    expect(events.map((e) => e.type)).toContain('device.registered');
    expect(await page.locator('#device-events tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-type')))).toEqual(events.map((e) => e.type));
    expect(await page.locator('#device-events tr[data-type="device.registered"] .what').textContent()).toBe('Registered');

    // A device with more reports than a page: its reports are paged by the collector.
    const p = await deviceBySerial(context, PAGED);
    await open(page, p.id);
    await expectReportsShown(page, context, p.id, '');
    expect(await page.locator('#device-reports tbody tr').count()).toBe(10);
    const first = await get<{ nextCursor: string }>(context, `/devices/${p.id}/reports?limit=10`);
    const before = await page.locator('#device-reports-list').getAttribute('data-answer');
    await page.getByRole('button', { name: 'Older' }).click();
    await site.answered(page, '#device-reports-list', before);
    await expectReportsShown(page, context, p.id, `&cursor=${first.nextCursor}`);
    expect(await page.locator('#device-reports tbody tr').count()).toBe(PAGED_REPORTS - 10);
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await axe(page, 'device page, an older page of reports');
    await context.close();
  });

  async function expectReportsShown(page: Page, context: BrowserContext, id: string, cursor: string) {
    const api = (await get<{ items: Report[] }>(context, `/devices/${id}/reports?limit=10${cursor}`)).items;
    const shown = await page.locator('#device-reports tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        reportId: tr.getAttribute('data-report'),
        receivedAt: tr.querySelector('.received time')?.getAttribute('datetime'),
        bytes: tr.querySelector('.bytes')?.textContent,
        tags: [...tr.querySelectorAll('.tags li')].map((li) => li.getAttribute('data-tag')),
        acks: [...tr.querySelectorAll('.acks li')].map((li) => [li.getAttribute('data-destination'), li.getAttribute('data-state'), li.querySelector('time')?.getAttribute('datetime')]),
      })),
    );
    expect(shown).toEqual(api.map((r) => ({
      reportId: r.reportId, receivedAt: r.receivedAt, bytes: `${r.bytes.toLocaleString('en')} bytes`, tags: r.tags,
      acks: r.acknowledgements.map((a) => [a.destination, a.state, a.at]),
    })));
    expect(shown.length).toBeGreaterThan(0);
  }

  it('when an admin moves a device to Lab, then the API has it in Lab, both VAs\' compliance follow, and the notice comes after the page shows it', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    const d = await deviceBySerial(context, 'UI-DEF-1');
    const [defBefore, labBefore] = [await inUse(context, site.defaultVa), await inUse(context, site.labVa)];
    await open(page, d.id);
    // The device is slow to be read again: the notice must still wait for the page (a race CI once lost on the tokens page).
    await page.route(`${site.server.url}/api/v1/devices/${d.id}`, async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 400));
      await r.continue();
    });
    await page.getByLabel('Move to virtual account').selectOption({ label: 'Lab' });
    await page.getByRole('button', { name: 'Move device' }).click();
    await notice(page, 'moved to Lab');
    expect(await field(page, 'va').textContent()).toBe('Lab');
    expect(await page.locator('#device-events tbody tr').first().getAttribute('data-type')).toBe('device.moved');
    expect(await page.locator('#device-events tbody tr').first().locator('.what').textContent()).toBe('Moved from Default to Lab');
    // Only the VAs it is not in are offered now.
    expect(await page.locator('#device-move-va option').allTextContents()).toEqual(['Default']);
    await page.unroute(`${site.server.url}/api/v1/devices/${d.id}`);

    expect((await get<Device>(context, `/devices/${d.id}`)).vaId).toBe(site.labVa);
    expect(await inUse(context, site.defaultVa)).toBe(defBefore - 3);
    expect(await inUse(context, site.labVa)).toBe(labBefore + 3);
    await context.close();
  });

  it('when an admin deregisters a device, then it asks first, the API has it deregistered, its licenses are released, and a refusal is said in words', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    const d = await deviceBySerial(context, 'UI-DEF-2');
    const before = await inUse(context, site.defaultVa);
    await open(page, d.id);
    // Dismissed, nothing changes.
    page.once('dialog', (dlg) => void dlg.dismiss());
    await page.getByRole('button', { name: 'Deregister device' }).click();
    expect((await get<Device>(context, `/devices/${d.id}`)).status).toBe('active');
    page.once('dialog', (dlg) => {
      expect(dlg.message()).toContain('Deregister C9300-24T UI-DEF-2?');
      void dlg.accept();
    });
    await page.getByRole('button', { name: 'Deregister device' }).click();
    await notice(page, 'UI-DEF-2 deregistered');
    expect(await field(page, 'status').textContent()).toBe('deregistered');
    expect(await page.getByRole('button', { name: 'Deregister device' }).count()).toBe(0);
    expect(await page.locator('#device-usage').count()).toBe(0);
    expect(await body(page).textContent()).toContain('a deregistered device holds no license');
    expect((await get<Device>(context, `/devices/${d.id}`)).status).toBe('deregistered');
    expect(await inUse(context, site.defaultVa)).toBe(before - 3);

    // Deregistered behind the page's back: the API's refusal is shown in words, and the page as it now is.
    const p = await deviceBySerial(context, PAGED);
    await open(page, p.id);
    const { csrfToken } = await get<{ csrfToken: string }>(context, '/auth/session');
    const r = await context.request.post(`${site.server.url}/api/v1/devices/${p.id}/deregister`, { headers: { 'x-csrf-token': csrfToken, origin: site.server.url } });
    expect(r.status()).toBe(200);
    page.once('dialog', (dlg) => void dlg.accept());
    await page.getByRole('button', { name: 'Deregister device' }).click();
    await page.locator('#device-notice .notice-error').waitFor();
    expect(await page.locator('#device-notice').textContent()).toBe(`The device was not deregistered: device ${p.id} is already deregistered`);
    expect(await field(page, 'status').textContent()).toBe('deregistered');
    // An address that names no device says so, rather than showing an empty page.
    await open(page, 'dev_nope', true);
    expect(await page.locator('main .notice-error').textContent()).toBe('No device has the id dev_nope.');
    expectRefusals([409, 404]);
    await context.close();
  });

  it('when a device asks for a new key, then an admin approves one re-key and refuses another through the page', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    const three = await deviceBySerial(context, 'UI-DEF-3');
    const four = await deviceBySerial(context, 'UI-DEF-4');
    // The same UDIs with new keys, as a replaced device (or an impostor) would register.
    const replacement = new SimulatedDevice(site.server.url, site.collectorId, three.udi);
    const impostor = new SimulatedDevice(site.server.url, site.collectorId, four.udi);
    for (const s of [replacement, impostor]) {
      const r = await s.register(site.tokens.default);
      expect([r.status, r.body.status]).toEqual([202, 'pending_rekey']);
    }

    await open(page, three.id);
    expect(await page.locator('#device-rekey').textContent()).toContain('asks to change its key');
    await axe(page, 'device page, a re-key waiting');
    await screenshot(page, 'device');
    await page.getByRole('button', { name: 'Approve re-key' }).click();
    await notice(page, 'Re-key approved');
    expect(await page.locator('#device-rekey').count()).toBe(0);
    expect(await page.locator('#device-events tbody tr').first().locator('.what').textContent()).toBe('Re-key approved');
    const approved = await get<Device>(context, `/devices/${three.id}`);
    expect([approved.pendingRekey, approved.publicKey]).toEqual([null, replacement.publicKey]);
    // The new key is the device's now: its reports are taken.
    replacement.deviceId = three.id;
    expect((await replacement.sendReport(replacement.report(TAG, 3))).status).toBe(200);

    await open(page, four.id);
    await page.getByRole('button', { name: 'Refuse re-key' }).click();
    await notice(page, 'Re-key refused');
    expect(await page.locator('#device-rekey').count()).toBe(0);
    expect(await page.locator('#device-events tbody tr').first().getAttribute('data-type')).toBe('device.rekey_refused');
    const refused = await get<Device>(context, `/devices/${four.id}`);
    expect(refused.pendingRekey).toBeNull();
    expect(refused.publicKey).not.toBe(impostor.publicKey);
    impostor.deviceId = four.id;
    expect((await impostor.sendReport(impostor.report(TAG, 50))).status).toBe(401);
    await axe(page, 'device page after a refusal');
    await context.close();
  });

  it('when a viewer of Lab opens devices, then a Lab device is shown with no control, and a Default device is refused in words', async () => {
    const { context, page } = await newPage();
    await signIn(page, VIEWER);
    const admin = await newPage();
    await signIn(admin.page, ADMIN);
    const lab = await deviceBySerial(admin.context, 'UI-LAB-1');
    const def = await deviceBySerial(admin.context, 'UI-DEF-4');
    await admin.context.close();

    await go(page, 'devices');
    await page.getByRole('link', { name: 'UI-LAB-1', exact: true }).click();
    await body(page).and(page.locator('[data-answer]')).waitFor();
    expect(await field(page, 'va').textContent()).toBe('Lab');
    expect(await page.locator('#device-reports tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('main button, main form, main input, main select, main textarea').count()).toBe(0);
    expect(await page.locator('#device-actions').count()).toBe(0);
    await axe(page, 'device page of a VA viewer');
    expect(page.url()).toContain(`#/devices/${lab.id}`);

    await open(page, def.id, true);
    expect(await page.locator('h1').textContent()).toBe('Device');
    expect(await page.locator('main .notice-error').textContent()).toContain('You may not see this device: it is in a virtual account you hold no role on.');
    expect(await page.locator('#device-body').count()).toBe(0);
    await axe(page, 'device page refused');
    expectRefusals([403]);
    await context.close();
  });

  it('when an admin of Lab who views Default opens devices, then it may deregister a Lab device but move it nowhere, and change nothing of Default', async () => {
    const { context, page } = await newPage();
    await signIn(page, LAB_ADMIN);
    const lab = await deviceBySerial(context, 'UI-LAB-1');
    await open(page, lab.id);
    // Default is a VA it sees, not one it may operate on: no move is offered into it.
    expect(await page.locator('#device-actions').textContent()).toContain('There is no other virtual account you may move it to.');
    expect(await page.locator('#device-move-va').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Deregister device' }).count()).toBe(1);
    await axe(page, 'device page of a VA admin');
    const def = await deviceBySerial(context, 'UI-DEF-4');
    await open(page, def.id);
    expect(await field(page, 'va').textContent()).toBe('Default');
    expect(await page.locator('main button, main form, main select').count()).toBe(0);
    await context.close();
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    expectCleanPages(site);
  });
});
