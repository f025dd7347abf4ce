import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/load.js';
import type { Db } from './open.js';

const collectorMigrations = join(packageRoot, 'src/store/migrations');

/**
 * Applies the numbered .sql files in src/store/migrations that this database has not seen,
 * each in its own transaction, recording the version in SQLite's user_version.
 */
export function migrate(db: Db, migrationsDir = collectorMigrations): void {
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const file of files) {
    const version = Number(file.slice(0, 3));
    if (version <= current) continue;
    const sql = readFileSync(join(migrationsDir, file), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version}`);
    })();
  }
}
