import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { TAG } from '../helpers/harness.js';

describe('outpost licenses transfer and transfers', () => {
  it('when an operator transfers from the command line, then it is refused with the available quantity, goes through within it, and is listed provisional', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    expect((await cli(['va', 'create', 'Campus'], env)).code).toBe(0);
    const over = await cli(['licenses', 'transfer', '--from', 'Default', '--to', 'Campus', '--tag', TAG, '--quantity', '5'], env);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain('Default has 0 of');
    const typo = await cli(['licenses', 'transfer', '--from', 'Default', '--to', 'Campus', '--tag', TAG, '--quantity', 'five'], env);
    expect(typo.stderr).toContain('--quantity');

    // A line as an upstream's snapshot would have left it (no command adds one by hand).
    const db = new Database(join(dir, 'outpost.db'));
    const va = db.prepare("SELECT id FROM virtual_accounts WHERE name = 'Default'").pluck().get() as string;
    db.prepare("INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES ('ent_cli', ?, ?, 'DNA', 'perpetual', 8, 0, NULL, 0)").run(va, TAG);
    db.close();

    const ok = await cli(['licenses', 'transfer', '--from', 'Default', '--to', 'Campus', '--tag', TAG, '--quantity', '5', '--reason', 'lab'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/transfer trf_\S+: 5 of .* from Default to Campus, provisional/);
    const list = await cli(['licenses', 'transfers'], env);
    expect(list.stdout).toMatch(/Default\s+Campus\s+\S+\s+5\s+provisional/);
  });

  it('when an operator settles a provisional transfer from the command line, then a missing reason is named, reverted gives the lines back, and a second settle names the state', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    expect((await cli(['va', 'create', 'Campus'], env)).code).toBe(0);
    const db = new Database(join(dir, 'outpost.db'));
    const va = db.prepare("SELECT id FROM virtual_accounts WHERE name = 'Default'").pluck().get() as string;
    db.prepare("INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES ('ent_cli', ?, ?, 'DNA', 'perpetual', 8, 0, NULL, 0)").run(va, TAG);
    db.close();
    const made = await cli(['licenses', 'transfer', '--from', 'Default', '--to', 'Campus', '--tag', TAG, '--quantity', '5'], env);
    const id = /transfer (trf_\S+):/.exec(made.stdout)![1]!;

    const noReason = await cli(['licenses', 'transfer', 'settle', id, '--as', 'reverted'], env);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toContain('--reason');
    const ok = await cli(['licenses', 'transfer', 'settle', id, '--as', 'reverted', '--reason', 'moved by mistake'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`transfer ${id}: 5 of`);
    expect(ok.stdout).toContain('reverted by hand');
    const check = new Database(join(dir, 'outpost.db'));
    expect(check.prepare('SELECT quantity FROM entitlements WHERE va_id = ? AND tag = ?').pluck().all(va, TAG)).toEqual([8]);
    check.close();
    const again = await cli(['licenses', 'transfer', 'settle', id, '--as', 'confirmed', '--reason', 'seen in the portal'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refused, not provisional');
  });
});
