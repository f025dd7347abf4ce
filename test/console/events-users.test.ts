import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { DAY } from '../helpers/harness.js';
import { recordSecret } from '../helpers/secrets.js';
import { EventRepository } from '../../src/events/repository.js';
import { chainText, GENESIS } from '../../src/events/service.js';
import { sha256hex } from '../../src/shared/hash.js';
import { LOCK_AFTER } from '../../src/users/service.js';
import type { Services } from '../../src/services.js';
import { ADMIN, VIEWER, expectCleanPages, useConsole } from './browser.js';

/**
 * The Events and Users pages in a real browser (see browser.ts for the seeded site): the
 * trail's filters, paging, CSV and chain check against the API; users added, tokens made and
 * revoked, a locked account seen and unlocked; and what a VA viewer is (not) offered.
 */
const LOU = { name: 'lou', password: 'console passphrase four' };
const UMA = { name: 'uma', password: 'console passphrase five' };
/** The events table's page, and more polls of IOS-XE devices than fit on one. */
const PAGE = 25;
const POLLS = 30;
const HOUR = 3_600_000;

interface Ev {
  id: number;
  at: string;
  type: string;
  actor: string;
  subject: string | null;
}

/**
 * Appends an event at a chosen time, chained as the collector chains it: the trail's own
 * events all happen as the site is seeded, and a time filter needs days between them.
 */
function appendAt(s: Services, at: number, type: string, actor: string, subject: string | null, vaId: string | null = null, details: object = {}): void {
  const repo = new EventRepository(s.db);
  const prev = repo.head()?.hash ?? GENESIS;
  const row = { at, type, actor, subject, va_id: vaId, details: JSON.stringify(details), origin: actor.startsWith('user:') || actor.startsWith('token:') ? '127.0.0.1' : null };
  repo.insert({ ...row, prev_hash: prev, hash: sha256hex(chainText(prev, row)) });
}

/** A time as a datetime-local field takes it: the browser's local time (the same machine's as this process), to the minute. */
function localMinute(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

describe('the Events and Users pages in a real browser', () => {
  const site = useConsole(async (s, { labVa }) => {
    const now = Date.now();
    appendAt(s, now - 3 * DAY, 'device.moved', 'user:carol (session ses_seed1)', 'dev_hist1', null, { to: 'Default' });
    appendAt(s, now - 2 * DAY, 'device.deregistered', 'token:tok_seed (user:carol)', 'dev_hist1');
    appendAt(s, now - 2 * DAY + HOUR, 'device.moved', 'user:dave', 'dev_hist1', null, { to: 'Lab' });
    appendAt(s, now - DAY, 'device.moved', 'user:carol', 'dev_hist2', labVa, { to: 'Lab' });
    for (let i = 0; i < POLLS; i++) appendAt(s, now - 4 * DAY + i * 3_600_000, 'cisco.polled', 'schedule', null, null, { devices: 12, failed: 0, accepted: 12, replaced: 0 });
    recordSecret('password', LOU.password);
    await s.users.add({ ...LOU, roles: [{ role: 'auditor' }] }, 'test');
  });
  const { newPage, signIn, go, axe, screenshot } = site;

  const shownEvents = (page: Page) =>
    page.locator('#events tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ id: Number(tr.getAttribute('data-event')), type: tr.querySelector('.type')?.textContent, actor: tr.querySelector('.actor')?.textContent, subject: tr.querySelector('.subject')?.textContent })),
    );
  const asShown = (items: Ev[]) => items.map((e) => ({ id: e.id, type: e.type, actor: e.actor, subject: e.subject ?? '—' }));

  it('when an admin filters the events, then the table, its pages and its CSV are the API\'s for the same filter, and the chain check is GET /events/verify\'s', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'events');
    const answer = async () => (await page.locator('#events-results').getAttribute('data-answer')) ?? '';
    const ready = (before: string) => site.answered(page, '#events-results', before);
    const events = (qs: string) => site.api<{ items: Ev[]; nextCursor: string | null }>(context, `/events?${qs}`);

    // The chain check, drawn beside the list, says what the API says. The collector's own jobs may
    // append an event meanwhile: the page is held to an answer the trail kept on both sides of its check.
    await page.locator('#verify-result[data-answer]').waitFor();
    type Report = { intact: boolean; head: { id: number }; events: number; checkpoints: { checked: number; matched: number } };
    const fields = (r: Report) => ({ intact: String(r.intact), head: String(r.head.id), events: String(r.events), checked: String(r.checkpoints.checked), matched: String(r.checkpoints.matched) });
    let verified: Report | undefined;
    for (let tries = 0; !verified; tries++) {
      expect(tries, 'the trail kept changing around each check').toBeLessThan(5);
      const before = await site.api<Report>(context, '/events/verify');
      const last = await page.locator('#verify-result').getAttribute('data-answer');
      await page.getByRole('button', { name: 'Verify now' }).click();
      await site.answered(page, '#verify-result', last);
      const after = await site.api<Report>(context, '/events/verify');
      if (JSON.stringify(fields(before)) !== JSON.stringify(fields(after))) continue;
      const shown = await page.locator('#verify-result').evaluate((el) => ({ ...(el as unknown as { dataset: Record<string, string> }).dataset }));
      expect(shown).toMatchObject(fields(after));
      verified = after;
    }
    expect(verified.intact).toBe(true);
    expect(await page.locator('#verify-result .verdict').textContent()).toContain('Intact');
    await axe(page, 'events page');
    await screenshot(page, 'events');

    // Type prefix and actor: a user's own actions, through its session and a token too.
    let said = await answer();
    await page.getByLabel('Type').fill('device.*');
    await page.getByLabel('Actor').fill('user:carol');
    await page.getByLabel('Actor').press('Enter');
    await ready(said);
    const byActor = await events(`type=device.*&actor=user:carol&limit=${PAGE}`);
    expect(byActor.items.map((e) => e.subject)).toEqual(['dev_hist2', 'dev_hist1', 'dev_hist1']);
    expect(await shownEvents(page)).toEqual(asShown(byActor.items));

    // Subject and a time range around the second day: the one event of carol's token, not dave's an hour after it.
    const hist = (await events(`subject=dev_hist1&limit=${PAGE}`)).items;
    const tokenEvent = hist.find((e) => e.type === 'device.deregistered')!;
    const t = Date.parse(tokenEvent.at);
    said = await answer();
    await page.getByLabel('Type').fill('');
    await page.getByLabel('Actor').fill('');
    await page.getByLabel('Subject').fill('dev_hist1');
    await page.getByLabel('From').fill(localMinute(t - 12 * HOUR));
    await page.getByLabel('Until').fill(localMinute(t + 30 * 60_000));
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await ready(said);
    const since = new Date(localMinute(t - 12 * HOUR)).toISOString();
    const until = new Date(localMinute(t + 30 * 60_000)).toISOString();
    const inRange = await events(`subject=dev_hist1&since=${since}&until=${until}&limit=${PAGE}`);
    expect(inRange.items.map((e) => e.id)).toEqual([tokenEvent.id]);
    expect(await shownEvents(page)).toEqual(asShown(inRange.items));

    // The CSV link carries the same filter, and its rows are the same events.
    const href = (await page.locator('#events-csv').getAttribute('href'))!;
    const q = new URL(href, site.server.url).searchParams;
    expect(Object.fromEntries(q)).toEqual({ subject: 'dev_hist1', since, until });
    const csv = (await (await context.request.get(`${site.server.url}${href}`)).text()).trim().split('\n');
    expect(csv[0]).toMatch(/^id,at,type,actor,subject/);
    expect(csv.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([tokenEvent.id]);

    // More than a page: the server's cursor pages them, and "Newer" goes back.
    // Cleared filters apply as they change: wait for that answer first, or it could be taken for the next one's.
    said = await answer();
    for (const f of ['Subject', 'From', 'Until']) await page.getByLabel(f).fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await ready(said);
    said = await answer();
    await page.getByLabel('Type').fill('cisco.*');
    await page.getByLabel('Type').press('Enter');
    await ready(said);
    const first = await events(`type=cisco.*&limit=${PAGE}`);
    expect(await shownEvents(page)).toEqual(asShown(first.items));
    expect(first.items).toHaveLength(PAGE);
    said = await answer();
    await page.getByRole('button', { name: 'Older events' }).click();
    await ready(said);
    const second = await events(`type=cisco.*&limit=${PAGE}&cursor=${first.nextCursor}`);
    expect(second.items).toHaveLength(POLLS - PAGE);
    expect(await shownEvents(page)).toEqual(asShown(second.items));
    expect(await page.getByRole('button', { name: 'Older events' }).isDisabled()).toBe(true);
    expect(new URL((await page.locator('#events-csv').getAttribute('href'))!, site.server.url).searchParams.get('type')).toBe('cisco.*');
    const pollCsv = (await (await context.request.get(`${site.server.url}/api/v1/events.csv?type=cisco.*`)).text()).trim().split('\n');
    expect(pollCsv.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([...first.items, ...second.items].map((e) => e.id));
    said = await answer();
    await page.getByRole('button', { name: 'Newer events' }).click();
    await ready(said);
    expect(await shownEvents(page)).toEqual(asShown(first.items));

    // A broken chain is said with where it breaks, as the API words it.
    const broken = { ...verified, intact: false, finding: { kind: 'changed', eventId: 7, range: { from: 5, to: 7 }, checkpoint: null, message: 'the first event changed lies in events 5 to 7' } };
    await page.route(`${site.server.url}/api/v1/events/verify`, (r) => r.fulfill({ json: broken }));
    const last = await page.locator('#verify-result').getAttribute('data-answer');
    await page.getByRole('button', { name: 'Verify now' }).click();
    await site.answered(page, '#verify-result', last);
    expect(await page.locator('#verify-result').getAttribute('data-intact')).toBe('false');
    expect(await page.locator('#verify-result .verdict').textContent()).toContain('Broken the first event changed lies in events 5 to 7');
    expect(await page.locator('#verify-result dl').textContent()).toContain('between events 5 and 7');
    await axe(page, 'events page, filtered, a broken chain');
    await context.close();
  });

  it('when an admin adds a user, makes it an API token and revokes it, then the user signs in, and the token works until it is revoked', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'users');
    type U = { id: string; name: string; status: string; locked: boolean; roles: { role: string; vaId: string | null }[] };
    const users = async () => (await site.api<{ items: U[] }>(context, '/users')).items;
    const rows = () => page.locator('#users tbody tr').evaluateAll((trs) => trs.map((tr) => ({ name: tr.getAttribute('data-name'), roles: tr.querySelector('.roles')?.textContent, state: tr.querySelector('.state')?.textContent })));
    expect((await rows()).map((r) => r.name)).toEqual((await users()).map((u) => u.name));
    expect((await rows()).find((r) => r.name === VIEWER.name)).toEqual({ name: VIEWER.name, roles: 'va-viewer on Lab', state: 'enabled' });

    recordSecret('password', UMA.password);
    await page.getByLabel('User name').fill(UMA.name);
    await page.getByLabel('Password', { exact: true }).fill(UMA.password);
    await page.getByLabel('Role', { exact: true }).selectOption('operator');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.locator('#users-notice', { hasText: `User ${UMA.name} added.` }).waitFor();
    // The notice comes after the table is reloaded: the row is there already.
    expect((await rows()).find((r) => r.name === UMA.name)).toEqual({ name: UMA.name, roles: 'operator', state: 'enabled' });
    const uma = (await users()).find((u) => u.name === UMA.name)!;
    expect(uma).toMatchObject({ status: 'active', locked: false, roles: [{ role: 'operator', vaId: null }] });

    const other = await newPage();
    await signIn(other.page, UMA);
    expect(await other.page.locator('h1').textContent()).toBe('Overview');
    // An operator is not offered the users.
    expect(await other.page.locator('nav a[href="#/users"]').count()).toBe(0);
    await other.context.close();

    // A token made for uma: its secret is shown once, copied, and opens the API.
    await page.getByRole('link', { name: `Manage ${UMA.name}` }).click();
    await page.locator('main[data-ready="true"] #user-detail').waitFor();
    await page.getByLabel('Token name').fill('nightly export');
    await page.getByRole('button', { name: 'Make token' }).click();
    const field = page.locator('#user-token-secret');
    await field.waitFor();
    const secret = await field.inputValue();
    recordSecret('API token', secret);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.locator('.copied', { hasText: 'Copied.' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    const made = (await site.api<{ items: { id: string; name: string; revokedAt: string | null }[] }>(context, `/users/${uma.id}/tokens`)).items;
    expect(made.map((t) => t.name)).toEqual(['nightly export']);
    expect(await page.locator(`#user-tokens tr[data-token="${made[0]!.id}"] .state`).textContent()).toBe('active');
    const asToken = () => fetch(`${site.server.url}/api/v1/auth/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    const whoami = await asToken();
    expect(whoami.status).toBe(200);
    expect(((await whoami.json()) as { actor: string }).actor).toBe(`token:${made[0]!.id} (user:${UMA.name})`);
    expect((await fetch(`${site.server.url}/api/v1/devices?limit=1`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    await axe(page, 'users page with a new token secret');

    // Revoked from the page while the list is slow to come back: the notice still waits for the table.
    await page.route(`${site.server.url}/api/v1/users/${uma.id}/tokens`, async (r) => {
      if (r.request().method() === 'GET') await new Promise((res) => setTimeout(res, 400));
      await r.continue();
    });
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke nightly export' }).click();
    await page.locator('#user-notice', { hasText: 'revoked' }).waitFor();
    expect(await page.locator(`#user-tokens tr[data-token="${made[0]!.id}"] .state`).textContent()).toBe('revoked');
    expect((await asToken()).status).toBe(401);
    await page.unroute(`${site.server.url}/api/v1/users/${uma.id}/tokens`);

    // Roles changed: uma becomes a viewer of Lab.
    await page.getByLabel('Role 1', { exact: true }).selectOption('va-viewer');
    await page.getByLabel('Virtual account of role 1').selectOption({ label: 'Lab' });
    await page.getByRole('button', { name: 'Save roles' }).click();
    await page.locator('#user-notice', { hasText: 'roles of uma are saved' }).waitFor();
    expect((await users()).find((u) => u.name === UMA.name)!.roles).toEqual([{ role: 'va-viewer', vaId: site.labVa }]);
    expect((await rows()).find((r) => r.name === UMA.name)!.roles).toBe('va-viewer on Lab');

    // Removed, after a confirmation.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Remove ${UMA.name}` }).click();
    await page.locator('#users-notice', { hasText: `User ${UMA.name} removed.` }).waitFor();
    expect((await users()).some((u) => u.name === UMA.name)).toBe(false);
    expect((await rows()).some((r) => r.name === UMA.name)).toBe(false);
    expect(await page.locator('#user-detail').count()).toBe(0);
    await context.close();
  });

  it(`when a user fails ${LOCK_AFTER} sign-ins, then the Users page shows it locked, and enabling it lets the user sign in again`, async () => {
    for (let i = 0; i < LOCK_AFTER; i++) {
      const r = await fetch(`${site.server.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: LOU.name, password: 'not the passphrase at all' }) });
      expect(r.status).toBe(401);
    }
    const { context, page } = await newPage();
    await signIn(page, ADMIN);
    await go(page, 'users');
    const lou = (await site.api<{ items: { id: string; name: string; locked: boolean }[] }>(context, '/users')).items.find((u) => u.name === LOU.name)!;
    expect(lou.locked).toBe(true);
    const row = page.locator(`#users tr[data-name="${LOU.name}"]`);
    expect(await row.getAttribute('class')).toBe('tone-bad');
    expect(await row.locator('.state').textContent()).toBe('enabledlocked');
    expect(await page.locator('#users-locked').textContent()).toContain(`Locked after failed sign-ins: ${LOU.name}.`);

    await page.getByRole('link', { name: `Manage ${LOU.name}` }).click();
    await page.locator('main[data-ready="true"] #user-detail').waitFor();
    await axe(page, 'users page, a locked account');
    await screenshot(page, 'users');
    await page.getByRole('button', { name: `Enable and unlock ${LOU.name}` }).click();
    await page.locator('#user-notice', { hasText: `${LOU.name} is enabled and unlocked.` }).waitFor();
    expect(await row.locator('.state').textContent()).toBe('enabled');
    expect(await page.locator('#users-locked').textContent()).toBe('');
    expect((await site.api<{ items: { name: string; locked: boolean }[] }>(context, '/users')).items.find((u) => u.name === LOU.name)!.locked).toBe(false);

    // At once: not refused as locked (423), nor slowed by the failures that locked it (429).
    const again = await fetch(`${site.server.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(LOU) });
    expect(again.status, await again.clone().text()).toBe(200);
    await context.close();
  });

  it('when a viewer of one VA opens the console, then it has no Users link, the address typed by hand is refused without data, and its events are its VA\'s', async () => {
    const { context, page } = await newPage();
    await signIn(page, VIEWER);
    expect(await page.locator('nav a[href="#/users"]').count()).toBe(0);
    await go(page, 'events');
    // Device events only: the collector's own jobs may add others to the trail as the test runs.
    const said = (await page.locator('#events-results').getAttribute('data-answer')) ?? '';
    await page.getByLabel('Type').fill('device.*');
    await page.getByLabel('Type').press('Enter');
    await site.answered(page, '#events-results', said);
    const mine = await site.api<{ items: (Ev & { vaId: string })[] }>(context, `/events?type=device.*&limit=${PAGE}`);
    expect(mine.items.map((e) => e.subject)).toContain('dev_hist2');
    expect(new Set(mine.items.map((e) => e.vaId))).toEqual(new Set([site.labVa]));
    expect(await shownEvents(page)).toEqual(asShown(mine.items));
    // The chain check is a global read: not offered to a role on one VA.
    expect(await page.locator('#verify').count()).toBe(0);
    await axe(page, 'events page of a VA viewer');

    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await page.evaluate("location.hash = '#/users'");
    await page.locator('main[data-ready="true"] h1', { hasText: 'Users' }).waitFor();
    expect(await page.locator('main .notice-error').textContent()).toContain('Only an admin may see and change users');
    expect(await page.locator('#users, #user-add').count()).toBe(0);
    expect(asked.filter((p) => p.startsWith('/api/v1/users'))).toEqual([]);
    expect((await context.request.get(`${site.server.url}/api/v1/users`)).status()).toBe(403);
    await axe(page, 'users page refused to a VA viewer');
    await context.close();
  });

  it('when every page has been used, then none logged an error and none asked any host but the collector', () => {
    expectCleanPages(site);
  });
});
