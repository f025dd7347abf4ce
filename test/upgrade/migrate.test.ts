import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { applyPragmas, openStore } from '../../src/store/open.js';
import { collectorMigrations, latestVersion, migrate, MigrationError } from '../../src/store/migrate.js';
import { loadConfig } from '../../src/config/load.js';
import { startUpstream } from '../../src/upstream/server/start.js';
import { upstreamMigrations } from '../../src/upstream/store.js';
import { tempDir } from '../helpers/temp.js';
import { cli, envFor } from '../helpers/processes.js';
import { collectorAt001, upstreamAt001 } from './fixtures-001.js';

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Marks a database as written by a later Outpost than this one. */
function fromTheFuture(file: string, version: number): void {
  const db = new Database(file);
  db.pragma(`user_version = ${version}`);
  db.close();
}

describe('a database written by a newer Outpost', () => {
  it('is refused by the collector at start, naming both versions, and left as it was', async () => {
    const dataDir = join(tempDir('newer'), 'data');
    const { file } = collectorAt001(dataDir);
    const latest = latestVersion();
    fromTheFuture(file, latest + 3);
    const before = digest(file);
    const r = await cli(['serve'], { ...envFor(dataDir), OUTPOST_HTTP_PORT: '0', OUTPOST_HTTP_HOST: '127.0.0.1' });
    expect(r.code).not.toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toContain(`schema version ${latest + 3}`);
    expect(out).toContain(`versions up to ${latest}`);
    expect(out).toContain('this database was written by a newer Outpost; run that version, or restore a backup made by this one');
    expect(digest(file)).toBe(before);
    expect(existsSync(join(dataDir, 'backups'))).toBe(false);
  });

  it('is refused by the upstream at start, and left as it was', async () => {
    const site = tempDir('newer-up');
    const dir = join(site, 'upstream');
    const { file } = upstreamAt001(dir);
    const latest = latestVersion(upstreamMigrations);
    fromTheFuture(file, latest + 1);
    const before = digest(file);
    const config = loadConfig({ env: {}, overrides: { dataDir: join(site, 'data'), upstream: { dataDir: dir, port: 0, host: '127.0.0.1' } } });
    await expect(startUpstream(config)).rejects.toThrow(
      `schema version ${latest + 1}, but this Outpost knows versions up to ${latest}: this database was written by a newer Outpost`,
    );
    expect(digest(file)).toBe(before);
  });
});

describe('a migration that fails', () => {
  it('leaves the database at its old version, with its data, names the migration, and frees the store', () => {
    const dir = tempDir('broken');
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    for (const f of readdirSync(collectorMigrations)) copyFileSync(join(collectorMigrations, f), join(migrations, f));
    const latest = latestVersion();
    const next = String(latest + 1).padStart(3, '0');
    const after = String(latest + 2).padStart(3, '0');
    // The first of two new migrations works, the second fails half way: neither may stay.
    writeFileSync(join(migrations, `${next}_add_notes.sql`), 'CREATE TABLE notes (id INTEGER PRIMARY KEY) STRICT;\n');
    writeFileSync(join(migrations, `${after}_broken.sql`), "ALTER TABLE virtual_accounts ADD COLUMN colour TEXT;\nINSERT INTO no_such_table VALUES (1);\n");

    const dataDir = join(dir, 'data');
    const { file } = collectorAt001(dataDir);
    const current = openStore(file); // brought to this version's latest, as a running site is
    current.close();

    let err: unknown;
    try {
      openStore(file, { migrationsDir: migrations, log: () => {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toContain(`migration ${after}_broken.sql`);
    expect((err as Error).message).toContain('no such table: no_such_table');
    expect((err as Error).message).toContain(`stays at schema version ${latest}`);
    expect((err as Error).message).toMatch(new RegExp(`pre-migration-v${latest}-to-v${latest + 2}-`));

    // The store was given back, and is as it was: version, schema and rows.
    const db = openStore(file);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(latest);
      expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'notes'").pluck().get()).toBe(0);
      expect(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('virtual_accounts')).not.toContain('colour');
      expect(db.prepare('SELECT count(*) FROM virtual_accounts').pluck().get()).toBe(2);
    } finally {
      db.close();
    }
  });

  it('copies an existing database before migrating, and nothing when creating one', () => {
    const dir = tempDir('copy');
    const fresh = new Database(join(dir, 'fresh.db'));
    applyPragmas(fresh);
    migrate(fresh, collectorMigrations, { log: () => {} });
    fresh.close();
    expect(existsSync(join(dir, 'backups'))).toBe(false);

    const logged: string[] = [];
    const old = new Database(join(dir, 'old.db'));
    applyPragmas(old);
    migrate(old, collectorMigrations, { upTo: 2, log: () => {} });
    migrate(old, collectorMigrations, { log: (m) => logged.push(m), now: () => Date.UTC(2030, 0, 2, 3, 4, 5) });
    old.close();
    const copy = join(dir, 'backups', `pre-migration-v2-to-v${latestVersion()}-2030-01-02T03-04-05-000Z.db`);
    expect(logged).toEqual([expect.stringContaining(copy)]);
    const c = new Database(copy, { readonly: true });
    expect(c.pragma('user_version', { simple: true })).toBe(2);
    c.close();
  });

  it('keeps the newest three pre-migration copies once an upgrade has gone through, and nothing else in the folder is touched', () => {
    const dir = tempDir('prune-copies');
    const backups = join(dir, 'backups');
    mkdirSync(backups);
    // Three copies from earlier upgrades, oldest first, and a backup of the operator's own.
    const earlier = [1, 2, 3].map((n) => join(backups, `pre-migration-v${n}-to-v${n + 1}-2029-0${n}-01T00-00-00-000Z.db`));
    // Their files' times say nothing (copied about, the oldest looks newest): the time in the name counts.
    earlier.forEach((f, i) => {
      writeFileSync(f, 'old copy');
      utimesSync(f, 1_900_000_000 - i * 1000, 1_900_000_000 - i * 1000);
    });
    writeFileSync(join(backups, 'outpost-backup-20290101T000000Z.db'), 'a backup');
    const logged: string[] = [];
    const db = new Database(join(dir, 'outpost.db'));
    applyPragmas(db);
    migrate(db, collectorMigrations, { upTo: 2, log: () => {} });
    migrate(db, collectorMigrations, { log: (m) => logged.push(m), now: () => Date.UTC(2030, 0, 2, 3, 4, 5) });
    db.close();
    const taken = `pre-migration-v2-to-v${latestVersion()}-2030-01-02T03-04-05-000Z.db`;
    expect(readdirSync(backups).sort()).toEqual(['outpost-backup-20290101T000000Z.db', ...earlier.slice(1).map((f) => f.slice(backups.length + 1)), taken].sort());
    expect(logged).toEqual([expect.stringContaining(taken), `removed the pre-migration copy ${earlier[0]}: the newest 3 are kept`]);
  });
});
