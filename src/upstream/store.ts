import { join } from 'node:path';
import { packageRoot } from '../config/load.js';
import { openStore, type Db, type StoreOptions } from '../store/open.js';

/** The upstream's numbered migrations, apart from the collector's. */
export const upstreamMigrations = join(packageRoot, 'src/upstream/migrations');

/** The reference upstream keeps its own database, apart from any collector's. */
export function openUpstreamStore(dataDir: string, opts: Pick<StoreOptions, 'freeBytes'> = {}): Db {
  // 16 KiB pages: millions of report rows of a few hundred bytes merge with a quarter of the
  // b-tree pages (and page splits) that 4 KiB pages would take.
  const db = openStore(join(dataDir, 'upstream.db'), { ...opts, migrationsDir: upstreamMigrations, pageSize: 16384 });
  // The upstream runs as a batch command, not a server: a 256 MiB page cache keeps the index
  // that counts each report once resident while millions of reports are merged into it.
  db.pragma('cache_size = -262144');
  // A rollback journal rather than WAL: a batch that appends millions of rows writes them once
  // (new pages need no journal), where WAL writes them twice (log, then checkpoint).
  db.pragma('journal_mode = DELETE');
  return db;
}
