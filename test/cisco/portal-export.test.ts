import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { tempDir } from '../helpers/temp.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const now = () => Math.floor(Date.now() / 1000);
const element = (serial: string, reportId: number) => rumElement({ pid: 'C9300-24T', serial, reportId, tag: TAG, measurements: [{ start: now() - 3600, end: now() - 60, count: 2 }] });

/** Unpacks the upload as a reviewer would, with tar: the manifest and every device file's text. */
function unpack(file: string): { manifest: string; devices: Record<string, string> } {
  const dir = tempDir('portal');
  execFileSync('tar', ['-xzf', file, '-C', dir]);
  const inner = readdirSync(dir).find((f) => f.startsWith('UD_VA_'))!;
  const devDir = join(dir, 'devices');
  mkdirSync(devDir);
  execFileSync('tar', ['-xzf', join(dir, inner), '-C', devDir]);
  return { manifest: readFileSync(join(dir, 'manifest.mf'), 'utf8'), devices: Object.fromEntries(readdirSync(devDir).map((f) => [f, readFileSync(join(devDir, f), 'utf8')])) };
}

describe("the vendor portal's offline usage upload", () => {
  it('when RUM reports were imported and polled, then the upload holds each as the device gave it, one file per device, and records what each file carried', async () => {
    const a1 = element('PORTAL-A', 1);
    const a2 = element('PORTAL-A', 2);
    await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(a1, a2)).expect(200);
    const polledJson = JSON.stringify({ header: {}, ...JSON.parse(/<!\[CDATA\[([\s\S]*)\]\]>/.exec(element('PORTAL-B', 7))![1]!) });
    await h.services.rum.importPolled([polledJson], { vaId: h.defaultVa, skipInvalid: false, actor: 'poll', maxElements: 10, maxFutureSkewMs: 86_400_000, staleAfterDays: 90 });

    const r = (await h.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    expect(r).toMatchObject({ devices: 2, reports: 3 });
    const { manifest, devices } = unpack(r.file);
    expect(manifest).toContain('Manifest-Version: 1.0');
    expect(manifest).toContain(h.services.identity.collectorId.replace(/^col_/, ''));
    const files = Object.entries(devices);
    expect(files).toHaveLength(2);
    const fileA = files.find(([, t]) => t.includes('PORTAL-A'))!;
    expect(fileA[1]).toContain(a1);
    expect(fileA[1]).toContain(a2);
    const fileB = files.find(([, t]) => t.includes('PORTAL-B'))!;
    expect(fileB[1]).toContain(`<![CDATA[${polledJson}]]>`);
    expect(fileA[0]).toMatch(/^dev_\d+_/);
    const carried = h.services.db.prepare('SELECT dev_id, count(*) AS n FROM portal_upload_reports GROUP BY dev_id ORDER BY n DESC').all();
    expect(carried.map((c: any) => c.n)).toEqual([2, 1]);
    expect(fileA[0]).toContain(`dev_${(carried[0] as any).dev_id}_`);
  });

  it('when no RUM report waits for the portal, then nothing is written and the refusal says so', async () => {
    const r = await h.api.post('/api/v1/cisco/export').send({});
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('nothing_to_export');
  });
});
