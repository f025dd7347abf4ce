import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';

describe('outpost export --period', () => {
  it('when the period is not YYYY-MM, then the command names the option as typed, exits 1 and writes no bundle', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    expect((await cli(['init'], env)).code).toBe(0);
    for (const bad of ['nov', '2026-13', '2026-1']) {
      const r = await cli(['export', '--period', bad], env);
      expect(r.code, bad).toBe(1);
      expect(r.stderr).toContain('--period: a month as YYYY-MM, e.g. 2026-11');
      expect(r.stderr).not.toMatch(/body|invalid_body/);
    }
    const outbox = join(dir, '..', 'bundles', 'outbox');
    expect(existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.opb')) : []).toEqual([]);
    const ok = await cli(['export', '--period', '2026-11', '--dry-run'], env);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining('dry run for 2026-11')]);
  });
});
