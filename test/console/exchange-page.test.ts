import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';
import { startUpstream, type Upstream } from '../helpers/exchange.js';
import { DAY, TAG } from '../helpers/harness.js';
import { recordSecret } from '../helpers/secrets.js';
import { dataOffset, flipAt } from '../helpers/tar-craft.js';
import { tempDir } from '../helpers/temp.js';
import { verifyBundle } from '../../src/exchange/read.js';

/**
 * The Exchange page in Chromium: the export's preview against the API's dry run, a bundle
 * written and downloaded through the page, the upstream's response uploaded and applied, a
 * tampered one refused with nothing changed, the history, and what a read-only role is offered.
 */
const AUDITOR = { name: 'aude', password: 'console passphrase three' };
const laptop = tempDir('laptop');
let up: Upstream;

describe('the Exchange page', () => {
  const site = useConsole(async (s, { defaultVa }) => {
    // Enrolled with a reference upstream the way operators do, fingerprints confirmed.
    up = startUpstream(tempDir('upstream'));
    const req = await s.exchange.enrollment.request('ACME', 'test');
    const added = await up.service.addCollector(req.file, { account: 'ACME', fingerprint: req.fingerprint });
    await s.exchange.enrollment.trust(added.responseFile!, up.service.identity.fingerprint, 'test');
    up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA Network Stack', kind: 'perpetual', quantity: 5, startsAt: Date.now() - 30 * DAY, endsAt: null });
    // An IOS-XE device polled for its usage (at a port nothing answers: the page shows it, nobody polls it here).
    recordSecret('password', 'device passphrase');
    s.cisco.devices.add({ name: 'edge-iosxe-1', host: '127.0.0.1', port: 9, username: 'outpost', password: 'device passphrase', vaId: defaultVa, tls: { mode: 'ca' } }, 'test');
    recordSecret('password', AUDITOR.password);
    await s.users.add({ ...AUDITOR, roles: [{ role: 'auditor' }] }, 'test');
  });
  afterAll(() => up?.close());

  /** POST with the page's session and its CSRF token, as the page itself would. */
  const post = async <T>(context: BrowserContext, path: string, data: unknown): Promise<T> => {
    const { csrfToken } = await site.api<{ csrfToken: string }>(context, '/auth/session');
    const r = await context.request.post(`${site.server.url}/api/v1${path}`, { data, headers: { 'x-csrf-token': csrfToken } });
    expect(r.status(), await r.text()).toBe(200);
    return (await r.json()) as T;
  };
  /** Everything an upload could change, as the API shows it. */
  const state = async (context: BrowserContext) => ({
    bundles: await site.api(context, '/exchange/bundles'),
    waiting: ((await site.api<{ destinations: unknown }>(context, '/exchange/status')).destinations),
    compliance: await site.api(context, '/compliance'),
    events: ((await site.api<{ items: { id: number }[] }>(context, '/events?limit=1000')).items.map((e) => e.id)),
  });
  const upload = async (page: Page, file: string) => {
    const before = await page.locator('#upload-result').getAttribute('data-answer');
    await page.locator('#upload-file').setInputFiles(file);
    await page.getByRole('button', { name: 'Upload and apply' }).click();
    await site.answered(page, '#upload-result', before);
    return (await page.locator('#upload-result').textContent()) ?? '';
  };

  let response: string;

  it('when an admin previews an export, then the page shows the dry run the API answers, per VA and license', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, ADMIN);
    await site.go(page, 'exchange');
    const status = await site.api<{ mode: string; destinations: { waiting: number }[] }>(context, '/exchange/status');
    expect(await page.locator('#exchange-status').textContent()).toContain('Disconnected');
    expect(await page.locator('#exchange-status').textContent()).toContain(`${status.destinations[0]!.waiting} reports since`);

    await page.getByLabel('Period').fill('2026-11');
    await page.getByRole('button', { name: 'Preview' }).click();
    await site.answered(page, '#export-preview-result', null);
    const dry = await post<{ period: string; reports: number; devices: number; usage: { vaId: string; tag: string; inUse: number; devices: number }[]; privacy: { hostnames: string } }>(
      context, '/exchange/export', { period: '2026-11', dryRun: true },
    );
    expect(dry.reports).toBe(5);
    const figure = (k: string) => page.locator(`#preview-figures [data-figure="${k}"]`).textContent();
    expect(await figure('period')).toBe(dry.period);
    expect(await figure('reports')).toBe(String(dry.reports));
    expect(await figure('devices')).toBe(String(dry.devices));
    expect(await figure('hostnames')).toContain(dry.privacy.hostnames === 'clear' ? 'as they are' : 'hashed');
    const shown = await page.locator('#preview-usage tbody tr').evaluateAll((rows) =>
      rows.map((r) => ({ vaId: r.getAttribute('data-va'), tag: r.getAttribute('data-tag'), inUse: Number(r.querySelector('.in-use')!.textContent), devices: Number(r.querySelector('.devices')!.textContent) })),
    );
    expect(shown).toEqual(dry.usage.map(({ vaId, tag, inUse, devices }) => ({ vaId, tag, inUse, devices })));
    expect(shown).toContainEqual({ vaId: site.defaultVa, tag: TAG, inUse: 9, devices: 3 });
    // A preview writes nothing.
    expect((await site.api<{ items: unknown[] }>(context, '/exchange/bundles')).items).toEqual([]);
    await site.axe(page, 'exchange page with a preview');
    await context.close();
  });

  it('when the bundle is written and downloaded through the page, then its bytes are the file the API serves, and it verifies', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, ADMIN);
    await site.go(page, 'exchange');
    await page.getByLabel('Period').fill('2026-11');
    await page.getByRole('button', { name: 'Preview' }).click();
    await site.answered(page, '#export-preview-result', null);
    await page.getByRole('button', { name: 'Write bundle' }).click();
    await site.answered(page, '#export-result', null);
    expect(await page.locator('#export-result').textContent()).toMatch(/Usage bundle 1 for 2026-11 written: 5 reports/);
    // A second bundle needs a new preview: the one shown answered for the state before this one.
    expect(await page.getByRole('button', { name: 'Write bundle' }).isDisabled()).toBe(true);

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-download').click()]);
    const saved = join(laptop, download.suggestedFilename());
    await download.saveAs(saved);
    const bundles = (await site.api<{ items: { id: string; direction: string; sequence: number; outcome: { status: string } }[] }>(context, '/exchange/bundles')).items;
    expect(bundles).toHaveLength(1);
    expect(bundles[0]).toMatchObject({ direction: 'out', sequence: 1, outcome: { status: 'waiting_for_answer' } });
    const served = await (await context.request.get(`${site.server.url}/api/v1/exchange/bundles/${bundles[0]!.id}/download`)).body();
    expect(Buffer.compare(readFileSync(saved), served)).toBe(0);
    const keys = await site.api<{ collector: { publicKey: string } }>(context, '/exchange/keys');
    const v = await verifyBundle(saved, { kinds: ['usage'], keyFor: () => Buffer.from(keys.collector.publicKey, 'base64') });
    expect(v.manifest).toMatchObject({ kind: 'usage', sequence: 1, period: '2026-11', bundleId: bundles[0]!.id });

    // The upstream reads the downloaded copy, as it would from the operator's laptop.
    response = (await up.process(saved)).responseFile;
    await context.close();
  });

  it('when the response is uploaded, then it is applied; a tampered copy is refused with its reason and changes nothing', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, ADMIN);
    await site.go(page, 'exchange');

    // Tampered first: one byte of the manifest flipped, so its signature no longer holds.
    const tampered = join(laptop, 'tampered-response.opb');
    copyFileSync(response, tampered);
    flipAt(tampered, dataOffset(tampered, 'manifest.json') + 40);
    const before = await state(context);
    const refused = await upload(page, tampered);
    expect(refused).toContain('tampered-response.opb was refused');
    expect(refused).toContain('signature');
    expect(refused).toContain('Nothing was changed');
    expect(refused).toMatch(/kept as .*rejected\/uploaded-\w+\.opb for a look, and the refusal is on the audit trail/);
    // Nothing changed but the audit trail, which now says who tried what, and why it was refused.
    const after = await state(context);
    const rejected = await site.api<{ items: { id: number; actor: string; details: { code: string; via: string } }[] }>(context, '/events?type=exchange.rejected');
    expect(rejected.items).toHaveLength(1);
    expect(rejected.items[0]!.actor).toMatch(new RegExp(`^user:${ADMIN.name} `));
    expect(rejected.items[0]).toMatchObject({ details: { code: 'bad_signature', via: 'upload' } });
    expect(after.events).toEqual([rejected.items[0]!.id, ...before.events]);
    expect({ ...after, events: before.events }).toEqual(before);

    const applied = await upload(page, response);
    expect(applied).toMatch(/applied \(response 1\): 4 reports acknowledged, 1 rejected, entitlements of 1 virtual account updated/);
    const status = await site.api<{ destinations: { destination: string; waiting: number }[] }>(context, '/exchange/status');
    expect(status.destinations.find((d) => d.destination === 'outpost')!.waiting).toBe(0);
    await page.locator('#exchange-history[data-answer]').waitFor();
    expect(await page.locator('#exchange-status').textContent()).toContain('nothing waiting');

    // The history: the response applied, the usage bundle answered by it, and the refused upload with its reason.
    const bundles = (await site.api<{ items: { id: string; direction: string; outcome: { status: string } }[] }>(context, '/exchange/bundles')).items;
    const usage = bundles.find((b) => b.direction === 'out')!;
    const answer = bundles.find((b) => b.direction === 'in')!;
    expect(usage.outcome.status).toBe('answered');
    expect(await page.locator(`#bundles tr[data-bundle="${usage.id}"] .outcome`).textContent()).toBe('Answered by response 1');
    expect(await page.locator(`#bundles tr[data-bundle="${answer.id}"] .outcome`).textContent()).toBe('Applied');
    expect(await page.locator(`#bundles tr[data-bundle="${answer.id}"] .carried`).textContent()).toBe('ACKs for 5 reports of usage bundle 1');
    const refusedRow = page.locator('#bundles tr[data-outcome="refused"]');
    expect(await refusedRow.count()).toBe(1);
    expect(await refusedRow.textContent()).toContain('bad_signature');
    expect(await page.locator('#bundles tbody tr').count()).toBe(3);

    await site.axe(page, 'exchange page after uploads');
    await site.screenshot(page, 'exchange');
    // The browser reports the refused upload's 400 as a failed resource; that one is expected.
    const expected = site.problems.filter((p) => /Failed to load resource: the server responded with a status of 400/.test(p));
    expect(expected).toHaveLength(1);
    site.problems.splice(0, site.problems.length, ...site.problems.filter((p) => !expected.includes(p)));
    await context.close();
  });

  it('when an auditor opens the page, then it shows the status and the history, and no control that changes anything', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, AUDITOR);
    await site.go(page, 'exchange');
    expect(await page.locator('#exchange-status').textContent()).toContain('Mode');
    expect(await page.locator('#bundles tbody tr[data-bundle]').count()).toBe(2);
    expect(await page.locator('#export, #upload, #bundles a[download]').count()).toBe(0);
    expect(await page.locator('main button, main input').count()).toBe(0);
    // Cisco's side, as the API lists it: the polled device, and no ACK waiting for it.
    const polled = await site.api<{ items: { id: string; name: string; host: string }[] }>(context, '/cisco/devices');
    expect(polled.items).toHaveLength(1);
    expect(await page.locator(`#polled-devices tr[data-polled="${polled.items[0]!.id}"] th`).textContent()).toBe('edge-iosxe-1');
    expect(await page.locator('#cisco').textContent()).toContain('No ACK waits to be delivered.');
    await site.axe(page, 'exchange page for an auditor');
    await context.close();
  });

  it('when a va-viewer signs in, then the Exchange page is not offered, and its address says why without asking for data', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, VIEWER);
    expect(await page.getByRole('navigation', { name: 'Main' }).locator('a[href="#/exchange"]').count()).toBe(0);
    // Loaded afresh at the page's address, not followed from the menu.
    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await page.goto('about:blank');
    await page.goto(`${site.server.url}/#/exchange`);
    await page.locator('main[data-ready="true"] h1').waitFor();
    expect(await page.locator('main h1').textContent()).toBe('Exchange');
    expect(await page.locator('main .notice-error').textContent()).toContain('The exchange is collector-wide');
    expect(await page.locator('#export, #upload, #exchange-status').count()).toBe(0);
    expect(asked.filter((p) => p.startsWith('/api/v1/exchange') || p.startsWith('/api/v1/cisco'))).toEqual([]);
    await context.close();
  });

  it('then no page logged an error or asked another host', () => expectCleanPages(site));
});
