import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { nextCronRun } from '../../src/time/zone.js';

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const nextExportDue = (dataDir: string): number => {
  const db = new Database(join(dataDir, 'outpost.db'), { readonly: true });
  try {
    return Number((db.prepare("SELECT value FROM meta WHERE key = 'exchange.next_export_due'").get() as { value: string }).value);
  } finally {
    db.close();
  }
};

describe('a collector on a host whose TZ is not UTC', () => {
  for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles']) {
    it(`when TZ is ${tz} and time.zone is left at UTC, then the monthly export is due at 02:00 UTC on the first`, async () => {
      const dir = tempDataDir();
      const before = Date.now();
      server = await serve(dir, { TZ: tz });
      const after = Date.now();
      const status = await cli(['time', 'status', '--json'], { ...envFor(dir), TZ: tz });
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ zone: 'UTC', systemClock: 'believed', alerts: [] });
      const due = nextExportDue(dir);
      // The host's TZ would put it 14 hours earlier (Kiritimati) or 8 later (Los Angeles).
      expect([nextCronRun('0 2 1 * *', before, 'UTC'), nextCronRun('0 2 1 * *', after, 'UTC')]).toContain(due);
      expect(new Date(due).getUTCHours()).toBe(2);
      expect(new Date(due).getUTCDate()).toBe(1);
    });
  }

  it('when the time commands run through the CLI, then confirm and reset-floor act through the server and are logged', async () => {
    const dir = tempDataDir();
    server = await serve(dir, { TZ: 'Pacific/Kiritimati' });
    const env = { ...envFor(dir), TZ: 'Pacific/Kiritimati' };
    const text = await cli(['time', 'status'], env);
    expect(text.stdout).toMatch(/trusted time {2}\d{4}-\d\d-\d\dT/);
    expect(text.stdout).toContain('no open clock alerts');
    expect((await cli(['time', 'confirm'], env)).stdout).toContain('the system clock is confirmed');
    const missing = await cli(['time', 'reset-floor'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--to is required');
    const to = new Date(Date.now() - 60_000).toISOString();
    const reset = await cli(['time', 'reset-floor', '--to', to], env);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain(`the floor is reset to ${to}`);
    const trail = JSON.parse((await cli(['events', '--type', 'time.*', '--json'], env)).stdout) as { type: string; actor: string }[];
    // The CLI acts over the socket: the OS user it reports is recorded, marked self-reported.
    expect(trail.map((e) => `${e.type} ${e.actor.replace(/^cli:[^ ]+ \(self-reported\)$/, 'cli')}`)).toEqual(['time.floor_reset cli', 'time.confirmed cli']);
  });
});
