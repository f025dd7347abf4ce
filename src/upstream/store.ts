import { join } from 'node:path';
import { packageRoot } from '../config/load.js';
import { openStore, type Db } from '../store/open.js';

/** The reference upstream keeps its own database, apart from any collector's. */
export function openUpstreamStore(dataDir: string): Db {
  return openStore(join(dataDir, 'upstream.db'), join(packageRoot, 'src/upstream/migrations'));
}
