import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { capturingLogger } from '../helpers/secrets.js';
import { TAG, DAY } from '../helpers/harness.js';
import { daysBefore, seed } from './series.js';

describe('outpost usage history and forecast', () => {
  // Seeded on the real calendar: the command reads "today" from the collector's trusted time.
  const dataDir = tempDataDir();
  const env = envFor(dataDir);
  const now = Date.now();
  const setup = () => {
    const s = buildServices(loadConfig({ env, overrides: { http: { port: 0 } } as never }), { logger: capturingLogger() });
    const va = s.accounts.list()[0]!.id;
    s.licenses.addLine({ vaId: va, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 40, startsAt: now - 400 * DAY, endsAt: null }, 'test');
    seed(s, va, TAG, Array.from({ length: 20 }, (_, i) => 10 + i + (i % 2)), now, 40);
    s.db.close();
    return va;
  };
  const va = setup();

  it('when asked for --json, then the days come as data, oldest first', async () => {
    const r = await cli(['usage', 'history', '--va', 'Default', '--tag', TAG, '--since', daysBefore(now, 3), '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body.vaId).toBe(va);
    expect(body.items).toEqual([
      { day: daysBefore(now, 3), tag: TAG, inUse: 28, owned: 40 },
      { day: daysBefore(now, 2), tag: TAG, inUse: 28, owned: 40 },
      { day: daysBefore(now, 1), tag: TAG, inUse: 30, owned: 40 },
    ]);
  });

  it('when asked for --csv, then a header and one quoted row per day (the tag holds a comma)', async () => {
    const r = await cli(['usage', 'history', '--va', 'Default', '--since', daysBefore(now, 2), '--csv'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'day,va_id,va_name,tag,in_use,owned\r\n' +
        `${daysBefore(now, 2)},${va},Default,"${TAG}",28,40\r\n` +
        `${daysBefore(now, 1)},${va},Default,"${TAG}",30,40\r\n`,
    );
  });

  it('when a day is not a day, then the option is named and the exit code is not 0', async () => {
    const r = await cli(['usage', 'history', '--va', 'Default', '--since', 'yesterday'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--since');
    expect((await cli(['usage', 'history'], env)).stderr).toContain('--va');
  });

  it('when asked for the forecast, then each VA and tag comes with its fit and crossing date, in text and JSON', async () => {
    const j = await cli(['usage', 'forecast', '--json'], env);
    expect(j.code).toBe(0);
    const [f] = JSON.parse(j.stdout);
    expect(f).toMatchObject({ vaId: va, tag: TAG, owned: 40, noForecast: null, fit: { days: 20 } });
    expect(f.fit.slopePerDay).toBeGreaterThan(0);
    const t = await cli(['usage', 'forecast'], env);
    expect(t.stdout).toContain(f.crossingDate);
    expect(t.stdout).toMatch(/SLOPE\/DAY\s+INTERCEPT\s+R2\s+DAYS/);
  });
});

