import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN, expectCleanPages, useConsole } from './browser.js';
import { startUpstream, type Upstream } from '../helpers/exchange.js';
import { tempDir } from '../helpers/temp.js';

/**
 * The Exchange page of a connected collector: the history of syncs, read from the audit trail,
 * and "Sync now" for those who operate. The upstream's address is a port nothing listens on, so
 * the sync run from the page fails, and says why.
 */
let up: Upstream;

describe('the Exchange page, connected', () => {
  const site = useConsole(
    async (s) => {
      // Enrolled with a reference upstream (its key pinned), which is then not where the collector looks.
      up = startUpstream(tempDir('upstream'));
      const req = await s.exchange.enrollment.request('ACME', 'test');
      const added = await up.service.addCollector(req.file, { account: 'ACME', fingerprint: req.fingerprint });
      await s.exchange.enrollment.trust(added.responseFile!, up.service.identity.fingerprint, 'test');
      // A sync that went well earlier, as the scheduled sync records it.
      s.events.append('sync.completed', 'schedule', null, null, { parts: 2, reports: { sent: 5, accepted: 4, rejected: 1 } });
    },
    // Port 9 (discard) answers nothing here; the scheduled sync is kept out of the test's way.
    { env: { OUTPOST_EXCHANGE_MODE: 'connected', OUTPOST_EXCHANGE_CONNECTION_URL: 'http://127.0.0.1:9', OUTPOST_EXCHANGE_SYNC_CRON: '0 0 1 1 *' } },
  );

  afterAll(() => up?.close());

  it('when an operator syncs now and it fails, then the syncs table shows the run with its reason above the earlier one, as the trail has them', async () => {
    const { context, page } = await site.newPage();
    await site.signIn(page, ADMIN);
    await site.go(page, 'exchange');
    const rows = page.locator('#syncs tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-outcome')).toBe('synced');
    expect(await rows.first().locator('.carried').textContent()).toBe('2 parts, 5 reports sent, 4 accepted, 1 rejected');

    await page.getByRole('button', { name: 'Sync now' }).click();
    await site.answered(page, '#sync-notice', null);
    const said = (await page.locator('#sync-notice').textContent()) ?? '';
    expect(said).toMatch(/^The sync failed: /);
    // The table was read again before the notice: the failed run is already first.
    expect(await rows.count()).toBe(2);
    const trail = (await site.api<{ items: { id: number; details: { code: string; message: string } }[] }>(context, '/events?type=sync.failed')).items;
    expect(trail).toHaveLength(1);
    expect(await rows.first().getAttribute('data-sync')).toBe(String(trail[0]!.id));
    expect(await rows.first().locator('.outcome').textContent()).toContain(`Failed ${trail[0]!.details.code}: ${trail[0]!.details.message}`);
    expect(said).toContain(`(${trail[0]!.details.code})`);
    await site.axe(page, 'exchange page, connected');
    await context.close();
  });

  it('then no page logged an error or asked another host', () => {
    expectCleanPages(site);
  });
});
