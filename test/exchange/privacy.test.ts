import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';

let h: Harness | undefined;
afterEach(() => h?.close());

const devicesIn = (file: string) => {
  const dir = tempDir('review');
  execFileSync('tar', ['-xf', file, '-C', dir]);
  return execFileSync('sh', ['-c', `zcat ${join(dir, 'devices.ndjson.gz')}`]).toString().trim().split('\n').map((l) => JSON.parse(l));
};

describe('hostnames in exports', () => {
  it('when hashHostnames is set, then hostnames leave as a keyed hash, the same for the same name', async () => {
    const base = tempDir('privacy');
    h = await startHarness({ config: { exchange: { hashHostnames: true, bundleDir: join(base, 'bundles') } } });
    const d = h.device('FOCPRIV1');
    await d.register(await h.token(), 'core-switch-paris-01');
    await d.sendReport(d.report(TAG, 1));
    const first = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
    const second = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
    const [a] = devicesIn(first.file);
    const [b] = devicesIn(second.file);
    expect(a.hostname).toMatch(/^hmac-sha256:[0-9a-f]{32}$/);
    expect(a.hostname).toBe(b.hostname);
    expect(JSON.stringify(devicesIn(first.file))).not.toContain('paris');
  });

  it('when it is not set, then hostnames leave as they are', async () => {
    h = await startHarness();
    const d = h.device('FOCPRIV2');
    await d.register(await h.token(), 'core-switch-lyon-02');
    const exp = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
    expect(devicesIn(exp.file)[0].hostname).toBe('core-switch-lyon-02');
  });
});
