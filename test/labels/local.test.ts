import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { packageRoot } from '../../src/config/load.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const NAME = 'Orchid-7731';
const DESCRIPTION = 'kept-on-site-5519';

/** Every member of a bundle, decompressed where it is gzip: what an upstream would read. */
function membersOf(file: string): { name: string; text: string }[] {
  const dir = tempDir('label-bundle');
  execFileSync('tar', ['-xf', file, '-C', dir]);
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const bytes = readFileSync(join(e.parentPath, e.name));
      return { name: e.name, text: (e.name.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8') };
    });
}

describe('labels stay on the site', () => {
  it("when a labelled device's usage and labelled lines are exported in a bundle (what a sync sends too), then no byte of it names the label", async () => {
    const d = await h.registered('FOCLABEL1');
    await d.sendReport(d.report(TAG, 2));
    const line = h.services.licenses.addLine({ vaId: h.defaultVa, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 5, startsAt: 0, endsAt: null }, 'test');
    await h.api.post('/api/v1/labels').send({ name: NAME, colour: '#8250df', description: DESCRIPTION }).expect(201);
    await h.api.post(`/api/v1/labels/${NAME}/attach`).send({ devices: [d.deviceId] }).expect(200);
    await h.api.post(`/api/v1/labels/${NAME}/attach`).send({ lines: [line.id] }).expect(200);
    expect((await h.api.get(`/api/v1/devices/${d.deviceId}`).expect(200)).body.labels).toEqual([{ name: NAME, colour: '#8250df' }]);

    const exp = (await h.api.post('/api/v1/exchange/export').send({}).expect(200)).body;
    const raw = readFileSync(exp.file);
    expect(raw.includes(NAME)).toBe(false);
    const members = membersOf(exp.file);
    // The bundle does carry the device: a bundle without it would prove nothing.
    expect(members.some((m) => m.text.includes('FOCLABEL1'))).toBe(true);
    for (const m of members) {
      expect(m.text, m.name).not.toContain(NAME);
      expect(m.text, m.name).not.toContain(DESCRIPTION);
      expect(m.text.toLowerCase(), m.name).not.toContain('"labels"');
    }
  });

  it('when the code that sends data off the site is read, then none of it reads labels (bundles, the connected sync, the Cisco cloud, the portal export)', () => {
    const offenders: string[] = [];
    for (const folder of ['exchange', 'sync', 'cssm', 'cisco', 'upstream']) {
      const dir = join(packageRoot, 'src', folder);
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
        const text = readFileSync(join(dir, f), 'utf8');
        if (/labels\/|device_labels|line_labels|\blabels\s*(?:FROM|JOIN)/i.test(text)) offenders.push(`${folder}/${f}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
