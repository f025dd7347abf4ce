import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';

/** The export's dry run: what it shows a reviewer is what the bundle then carries. */
let h: Harness | undefined;
afterEach(() => h?.close());

const payload = (file: string, name: string) => {
  const dir = tempDir('review');
  execFileSync('tar', ['-xf', file, '-C', dir]);
  return execFileSync('sh', ['-c', `zcat ${join(dir, name)}`]).toString().trim().split('\n').map((l) => JSON.parse(l));
};

describe('the export preview', () => {
  it('when a dry run is asked, then it lists per VA and tag the usage the bundle carries, and how hostnames leave', async () => {
    h = await startHarness({ config: { exchange: { hashHostnames: true, bundleDir: join(tempDir('preview'), 'bundles') } } });
    const lab = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id as string;
    for (const [va, tag, n] of [[h.defaultVa, TAG, 3], [h.defaultVa, TAG2, 2], [lab, TAG, 4]] as const) {
      const d = await h.registered(undefined, va);
      await d.sendReport(d.report(tag, n));
    }
    const dry = (await h.api.post('/api/v1/exchange/export').send({ period: '2026-11', dryRun: true }).expect(200)).body;
    expect(dry).toMatchObject({ dryRun: true, period: '2026-11', reports: 3, devices: 3, virtualAccounts: 2, usageSummary: 3, privacy: { hostnames: 'keyed-hash' } });
    expect(dry.usage).toContainEqual({ vaId: lab, vaName: 'Lab', tag: TAG, inUse: 4, devices: 1 });
    expect(dry.usage).toContainEqual({ vaId: h.defaultVa, vaName: 'Default', tag: TAG2, inUse: 2, devices: 1 });
    // A dry run writes nothing.
    expect(h.count('SELECT count(*) FROM bundles')).toBe(0);

    const written = (await h.api.post('/api/v1/exchange/export').send({ period: '2026-11' }).expect(200)).body;
    const carried = payload(written.file, 'usage-summary.ndjson.gz');
    expect(dry.usage.map(({ vaName: _n, ...u }: { vaName: string }) => u)).toEqual(carried);
    expect(written.reports).toBe(dry.reports);
  });

  it('when hostnames are not hashed, then the preview says they leave as they are', async () => {
    h = await startHarness();
    const dry = (await h.api.post('/api/v1/exchange/export').send({ dryRun: true }).expect(200)).body;
    expect(dry.privacy).toEqual({ hostnames: 'clear' });
    expect(dry.usage).toEqual([]);
  });
});
