import { readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';

// Tests here run a dozen CLI processes each, one after another: about a second apiece on an idle
// two-core machine, several when it is loaded; the default 30 s bound is for one or two.
vi.setConfig({ testTimeout: 90_000 });

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/rum/c9800-cl-example.xml', import.meta.url));

describe('the outpost command with no server running', () => {
  const dir = tempDataDir();
  const env = envFor(dir);

  it('when init runs, then the identity is created once, with its private key readable by its owner only', async () => {
    const first = await cli(['init', '--json'], env);
    expect(first.code).toBe(0);
    const id = JSON.parse(first.stdout);
    expect(id.collectorId).toMatch(/^col_/);
    expect(statSync(join(dir, 'keys/collector.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'outpost.db')).mode & 0o777).toBe(0o600);
    const second = JSON.parse((await cli(['init', '--json'], env)).stdout);
    expect(second.collectorId).toBe(id.collectorId);
    expect(second.fingerprint).toBe(id.fingerprint);
    expect(first.stdout + first.stderr).not.toContain(readFileSync(join(dir, 'keys/collector.key'), 'utf8').trim());
  });

  it('when commands run, then they act on the store directly', async () => {
    expect((await cli(['va', 'create', 'Warehouse'], env)).code).toBe(0);
    const tok = await cli(['token', 'create', '--va', 'Warehouse', '--description', 'dock switches', '--json'], env);
    expect(tok.code).toBe(0);
    expect(JSON.parse(tok.stdout).secret).toMatch(/^opt_/);
    const list = await cli(['token', 'list'], env);
    expect(list.stdout).toContain('dock switches');
    expect(list.stdout).not.toContain(JSON.parse(tok.stdout).secret);
  });

  it('when events verify runs, then an intact trail exits 0, and a row altered behind its back exits 1 naming it', async () => {
    const ok = await cli(['events', 'verify'], env);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining('intact')]);
    const db = new Database(join(dir, 'outpost.db'));
    const id = (db.prepare('SELECT min(id) AS id FROM events').get() as { id: number }).id;
    db.prepare("UPDATE events SET actor = 'someone-else' WHERE id = ?").run(id);
    db.close();
    const broken = await cli(['events', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`event ${id}`);
  });

  it('when an argument is wrong, then the command says what and exits non-zero', async () => {
    const r = await cli(['token', 'create', '--va', 'Nowhere', '--description', 'x'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('virtual account Nowhere does not exist');
    const u = await cli(['devices', 'lst'], env);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('unknown command');
    const bad = await cli(['va', 'list'], { ...env, OUTPOST_HTTP_PORT: 'eighty' });
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('http.port (OUTPOST_HTTP_PORT)');
  });
});

describe('the outpost command with the collector running', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  let server: ServerProcess;
  beforeAll(async () => {
    server = await serve(dir);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('when a second collector starts on the same data, then it refuses: one process owns the database', async () => {
    await expect(serve(dir)).rejects.toThrow(/in use by another Outpost process/);
    expect(statSync(join(dir, 'outpost.sock')).mode & 0o777).toBe(0o600);
  });

  it('when devices are simulated and files imported, then the CLI sees it all through the server', async () => {
    const sim = await cli(['simulate', '--url', server.url, '--devices', '6', '--reports', '4', '--json'], env, 60_000);
    expect(sim.code, sim.stderr).toBe(0);
    expect(JSON.parse(sim.stdout)).toMatchObject({ devices: 6, reportsSent: 24, accepted: 24, failed: 0 });

    const imp = await cli(['usage', 'import', FIXTURE, '--va', 'Default'], env);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toContain('1 accepted');

    const devices = JSON.parse((await cli(['devices', 'list', '--json'], env)).stdout);
    expect(devices.items).toHaveLength(7);

    const comp = await cli(['compliance'], env);
    expect(comp.stdout).toContain('not authorized');
    const verify = JSON.parse((await cli(['compliance', 'verify', '--json'], env)).stdout);
    expect(verify.drift).toEqual([]);

    const alerts = await cli(['alerts'], env);
    expect(alerts.stdout).toContain('shortage');

    await cli(['va', 'create', 'Spares'], env);
    const id = devices.items[0].id;
    expect((await cli(['devices', 'move', id, '--va', 'Spares'], env)).code).toBe(0);
    expect((await cli(['devices', 'remove', id], env)).code).toBe(0);
    const events = await cli(['events', '--type', 'device.*'], env);
    expect(events.stdout).toContain('device.moved');
    expect(events.stdout).toContain('device.deregistered');
    expect(events.stdout.split('\n').find((l) => l.includes('device.moved'))).toContain('cli');
  });
});
