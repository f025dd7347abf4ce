import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { ROOT } from '../systemd/files.js';
import { section } from './install-section.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A histogram's or summary's series carry a suffix its family does not. */
const family = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

// The scrape config, the metric table and the alert rules an operator copies from the README must
// name metrics the collector serves: a renamed metric would leave an alert that never fires.
describe('the metrics the README names', () => {
  it('are each served by /metrics, in connected and disconnected mode alike', async () => {
    const text = section(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'Running it as a service')!;
    const named = new Set([...text.matchAll(/\boutpost_[a-z0-9_]+/g)].map((m) => family(m[0])));
    expect(named.size).toBeGreaterThan(15);
    for (const config of [{}, { exchange: { mode: 'connected', connection: { url: 'http://127.0.0.1:9' } } }]) {
      h = await startHarness({ config });
      const served = parsePrometheus((await h.api.get('/metrics').expect(200)).text);
      const missing = [...named].filter((n) => !served.has(n));
      expect(missing, `named in the README, not served (${JSON.stringify(config)})`).toEqual([]);
      await h.close();
      h = undefined;
    }
  });
});
