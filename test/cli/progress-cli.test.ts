import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { TAG } from '../helpers/harness.js';
import { seedPendingReports } from '../helpers/seed-reports.js';

/** The real command against a real collector: progress on stderr, results on stdout. */
describe('outpost export following the collector\'s progress', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  let server: ServerProcess;

  beforeAll(async () => {
    // The store made by the command itself, then filled as a month of ingest would leave it.
    const vas = await cli(['va', 'list', '--json'], env);
    expect(vas.code, vas.stderr).toBe(0);
    const db = new Database(join(dir, 'outpost.db'));
    seedPendingReports(db, (JSON.parse(vas.stdout) as { id: string }[])[0]!.id, 4000, TAG);
    db.close();
    server = await serve(dir);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('then, with stderr not a terminal, it prints plain progress lines with counts and rate there, and stdout stays one JSON document', async () => {
    const r = await cli(['export', '--period', '2026-11', '--json'], env, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reports: 4000, period: '2026-11' });
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^export write: 0\/4000 reports \(0%\), [\d.]+\/s$/);
    expect(lines).toContain(lines.find((l) => /^export write: 4000\/4000 reports \(100%\), [\d.]+\/s$/.test(l)));
    expect(r.stderr).not.toContain('\x1b');
  });

  it('then with --quiet it prints the result and no progress at all', async () => {
    const r = await cli(['export', '--period', '2026-11', '--quiet'], env, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage bundle \d+ for 2026-11: /);
  });

  it('then a failure after progress was streamed ends the command with the error and a non-zero exit', async () => {
    const outbox = join(dir, '..', 'bundles', 'outbox');
    rmSync(outbox, { recursive: true, force: true });
    writeFileSync(outbox, 'not a folder');
    const r = await cli(['export', '--period', '2026-11'], env, 60_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^export write: 0\/4000 reports/);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^outpost export: .+ \(\w+\)$/);
    rmSync(outbox);
  });
});
