import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readManifest, verifyBundle, readLinesSync } from '../../src/exchange/read.js';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { tempDir } from '../helpers/temp.js';
import { join } from 'node:path';

let s: Site;
beforeEach(async () => {
  s = await startSite();
});
afterEach(() => s.close());

type Devices = 'all' | 'waiting' | { arrivedSince: number };
const part = (maxReports: number, maxBytes = 64 << 20, devices: Devices = 'waiting', after = 0) =>
  s.h.services.exchange.exporter.export({ actor: 'test', part: { maxReports, maxBytes, devices, after } });

/** The lines of one payload of a bundle the collector wrote (its own key verifies it). */
async function payload(file: string, name: string): Promise<Record<string, unknown>[]> {
  const dir = tempDir('part');
  const id = s.h.services.identity;
  await verifyBundle(file, { kinds: ['usage'], keyFor: () => id.publicKey, extractTo: dir });
  return [...readLinesSync(join(dir, name.replace(/\.gz$/, '')))].map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('parts of a sync', () => {
  it('when more reports wait than a part may carry, then parts take them in order, each saying whether more wait and where it ended', async () => {
    s.up.service.addTag(TAG, 'DNA Network Stack'); // the upstream's catalog knows the tag: its reports are accepted
    const a = await s.h.registered('PART-A');
    const b = await s.h.registered('PART-B');
    for (let i = 0; i < 3; i++) await a.sendReport(a.report(TAG, 1, undefined, `a${i}`));
    for (let i = 0; i < 2; i++) await b.sendReport(b.report(TAG, 1, undefined, `b${i}`));

    const first = await part(3);
    expect(first).toMatchObject({ reports: 3, more: true });
    expect(first.file).toContain(`${join('sent', '')}`);
    expect((await payload(first.file, 'reports.ndjson.gz')).map((r) => r.reportId)).toEqual(['a0', 'a1', 'a2']);
    expect((await readManifest(first.file)).manifest.meta).toMatchObject({ transport: 'sync', devices: 'waiting' });
    // No alert asks an operator to carry a part: the sync posts it.
    expect((await s.h.api.get('/api/v1/alerts?kind=export_ready')).body.items).toHaveLength(0);

    // Answered, the first part's reports are settled; the next part starts after them.
    const r = await s.up.process(first.file);
    expect((await s.importFile(r.responseFile)).body.acks).toMatchObject({ accepted: 3 });
    const second = await part(3);
    expect(second).toMatchObject({ reports: 2, more: false });
    expect((await payload(second.file, 'reports.ndjson.gz')).map((x) => x.reportId)).toEqual(['b0', 'b1']);
  });

  it('when the next part is built before the last one is answered, then it starts after it: no report twice, none left out', async () => {
    const d = await s.h.registered('AHEAD');
    for (let i = 0; i < 5; i++) await d.sendReport(d.report(TAG, 1, undefined, `r${i}`));
    const first = await part(2);
    const second = await part(2, 64 << 20, { arrivedSince: 0 }, first.lastRef);
    const third = await part(2, 64 << 20, { arrivedSince: 0 }, second.lastRef);
    const ids = async (p: { file: string }) => (await payload(p.file, 'reports.ndjson.gz')).map((x) => x.reportId);
    expect([await ids(first), await ids(second), await ids(third)]).toEqual([['r0', 'r1'], ['r2', 'r3'], ['r4']]);
    expect([first.more, second.more, third.more]).toEqual([true, true, false]);
  });

  it('when a part follows the first of its sync, then it carries only the devices of reports that arrived since the sync began', async () => {
    const a = await s.h.registered('EARLY-A');
    const b = await s.h.registered('EARLY-B');
    await a.sendReport(a.report(TAG, 1, undefined, 'a0'));
    await b.sendReport(b.report(TAG, 1, undefined, 'b0'));
    const first = await part(1);
    expect(first).toMatchObject({ reports: 1, devices: 2 }); // every device a waiting report names
    const syncStart = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    const late = await s.h.registered('LATE-C');
    await late.sendReport(late.report(TAG, 1, undefined, 'c0'));
    const rest = await part(10, 64 << 20, { arrivedSince: syncStart }, first.lastRef);
    expect(rest.reports).toBe(2);
    expect((await payload(rest.file, 'devices.ndjson.gz')).map((d) => d.udi)).toEqual([expect.stringContaining('LATE-C')]);
  });

  it('when a part is bounded by bytes, then it stops before the chunk that would pass the bound, yet always carries one', async () => {
    const d = await s.h.registered('PART-BYTES');
    for (let i = 0; i < 1500; i++) await d.sendReport(d.report(TAG, 1, undefined, `r${i}`));
    // Reports are read in chunks of 1000: a 1-byte bound still carries the first chunk, and stops there.
    const p = await part(100_000, 1);
    expect(p).toMatchObject({ reports: 1000, more: true });
    const all = await part(100_000);
    expect(all).toMatchObject({ reports: 1500, more: false });
  });

  it('when a part is asked for every device, then it carries devices that have nothing to report', async () => {
    await s.h.registered('QUIET-1');
    const d = await s.h.registered('BUSY-1');
    await d.sendReport(d.report(TAG, 1));
    expect((await part(10)).devices).toBe(1);
    expect((await part(10, 64 << 20, 'all')).devices).toBe(2);
  });
});

describe('a part that does not carry the device it reports', () => {
  it("when the device belongs to another account at the upstream, then its reports are still refused", async () => {
    const site = await startSite();
    try {
      site.up.service.addTag(TAG, 'DNA Network Stack');
      const d = await site.h.registered('OWNED-ELSEWHERE');
      await d.sendReport(d.report(TAG, 1, undefined, 'x1'));
      // Another account holds this UDI at the upstream.
      const other = site.up.service.account('OTHER', true);
      site.up.service.db
        .prepare("INSERT INTO devices (udi, account_id, collector_id, device_id, va_id, hostname, updated_at) VALUES (?, ?, 'col_other', 'dev_other', NULL, '', 0)")
        .run(`${d.udi.pid}:${d.udi.serial}`, other.id);
      // A later part of a sync: its devices are those of reports that arrived since the sync began (none here).
      const p = await site.h.services.exchange.exporter.export({ actor: 'test', part: { maxReports: 10, maxBytes: 1 << 20, devices: { arrivedSince: Date.now() + 60_000 } } });
      expect(p.devices).toBe(0);
      const r = await site.up.process(p.file);
      expect(r.reports).toMatchObject({ accepted: 0, rejected: 1 });
    } finally {
      await site.close();
    }
  });
});
