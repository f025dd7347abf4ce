import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { loadConfig, packageRoot } from '../../src/config/load.js';
import { buildServices, databaseFile } from '../../src/main.js';
import { migrate } from '../../src/store/migrate.js';
import { ManualClock } from '../../src/shared/clock.js';
import { capturingLogger } from '../helpers/secrets.js';
import { seed } from './series.js';

const NOW = Date.UTC(2026, 2, 10, 9);

describe('who sees the usage history and forecast', () => {
  let h: Harness;
  afterEach(() => h.close());

  it('when a user holds a role on one VA, then it sees that VA\'s history and forecast only', async () => {
    h = await startHarness({ clock: new ManualClock(NOW) });
    const a = h.defaultVa;
    const b = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Other' }).expect(201)).body.id;
    seed(h.services, a, TAG, [1, 2, 3], NOW);
    seed(h.services, b, TAG, [4, 5, 6], NOW);
    const u = await h.services.users.add({ name: 'vic', password: 'correct horse battery staple', roles: [{ role: 'va-viewer', vaId: a }] }, 'test');
    const token = h.services.users.createToken(u.id, { name: 't', expiresInDays: 1 }, 'test').secret;
    const get = (p: string) => h.api.get(p).set('authorization', `Bearer ${token}`);
    expect((await get(`/api/v1/usage/history?vaId=${a}`).expect(200)).body.items.map((i: { inUse: number }) => i.inUse)).toEqual([1, 2, 3]);
    expect((await get(`/api/v1/usage/history?vaId=${b}`)).status).toBe(403);
    expect((await get('/api/v1/usage/history?vaId=Other')).status).toBe(403);
    expect((await get('/api/v1/usage/forecast').expect(200)).body.items.map((f: { vaId: string }) => f.vaId)).toEqual([a]);
    expect((await get(`/api/v1/usage/forecast?vaId=${b}`)).status).toBe(403);
  });
});

describe('the history in the store', () => {
  const configFor = (dataDir: string) => loadConfig({ env: {}, overrides: { dataDir, http: { port: 0 }, exchange: { bundleDir: join(dataDir, '..', 'bundles') } } as never });

  it('when the collector is stopped and started again, then the history is still there and the day goes on from its peak', () => {
    const dataDir = join(tempDir('history'), 'data');
    const config = configFor(dataDir);
    const clock = new ManualClock(NOW);
    let s = buildServices(config, { clock, logger: capturingLogger() });
    seed(s, s.accounts.list()[0]!.id, TAG, [3, 4, 5], NOW);
    s.db.prepare("INSERT INTO usage_history (va_id, tag, day, in_use, owned, updated_at) VALUES (?, ?, '2026-03-10', 9, NULL, ?)").run(s.accounts.list()[0]!.id, TAG, NOW);
    s.db.close();
    s = buildServices(config, { clock, logger: capturingLogger() });
    s.licenses.addLine({ vaId: s.accounts.list()[0]!.id, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 20, startsAt: NOW - 1000, endsAt: null }, 'test');
    s.history.sample(); // nothing in use now: the day's peak of 9 stays
    expect(s.history.history('Default', { tag: TAG }).items.at(-1)!.owned).toBe(20);
    expect(s.history.history('Default', { tag: TAG }).items.map((i) => [i.day, i.inUse])).toEqual([
      ['2026-03-07', 3], ['2026-03-08', 4], ['2026-03-09', 5], ['2026-03-10', 9],
    ]);
    s.db.close();
  });

  it('when a store made before migration 020 is opened, then the history table is added and the usage it holds is sampled', () => {
    const dataDir = join(tempDir('history'), 'data');
    mkdirSync(dataDir, { recursive: true });
    const before = join(tempDir('migrations'), 'm');
    mkdirSync(before);
    const all = join(packageRoot, 'src/store/migrations');
    for (const f of readdirSync(all).filter((f) => /^\d{3}_/.test(f) && Number(f.slice(0, 3)) < 20)) copyFileSync(join(all, f), join(before, f));
    const config = configFor(dataDir);
    const old = new Database(databaseFile(config));
    migrate(old, before);
    const version = old.pragma('user_version', { simple: true }) as number;
    expect(version).toBeLessThan(20);
    old.prepare("INSERT INTO virtual_accounts (id, name, description, origin, created_at, updated_at) VALUES ('va-old', 'Old', '', 'local', ?, ?)").run(NOW, NOW);
    old.prepare("INSERT INTO va_usage (va_id, tag, in_use, devices) VALUES ('va-old', ?, 12, 3)").run(TAG);
    old.close();

    const s = buildServices(config, { clock: new ManualClock(NOW), logger: capturingLogger() });
    expect(s.db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(20);
    s.history.sample();
    expect(s.history.history('Old', {}).items).toEqual([{ day: '2026-03-10', tag: TAG, inUse: 12, owned: 0 }]);
    s.db.close();
  });
});
