import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail, ok, warn, type Check } from './check.js';

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * The modes the collector relies on: its keys readable by their owner only (as it refuses them
 * at start), and the data folder and database closed to other users (the database holds token
 * hashes and device keys).
 */
export function fileModeChecks(dataDir: string): Check[] {
  if (!existsSync(dataDir)) return [warn('data folder', `${dataDir} does not exist`, 'start the collector once (outpost serve), or point --data-dir / dataDir at the site\'s data folder')];
  const problems: Check[] = [];
  const dirMode = statSync(dataDir).mode;
  if (dirMode & 0o007) problems.push(fail('data folder mode', `${dataDir} may be read by any user (mode ${octal(dirMode)})`, `chmod 700 ${dataDir}`));
  else if (dirMode & 0o070) problems.push(warn('data folder mode', `${dataDir} may be read by its group (mode ${octal(dirMode)})`, `chmod 700 ${dataDir}, unless the group is meant to read it`));
  for (const f of ['outpost.db', 'outpost.db-wal', 'outpost.db-shm']) {
    const path = join(dataDir, f);
    if (!existsSync(path)) continue;
    const m = statSync(path).mode;
    if (m & 0o077) problems.push(fail('database mode', `${path} may be read by its group or others (mode ${octal(m)})`, `chmod 600 ${path}`));
  }
  const keys = join(dataDir, 'keys');
  if (existsSync(keys)) {
    const km = statSync(keys).mode;
    if (km & 0o077) problems.push(fail('keys folder mode', `${keys} may be read by its group or others (mode ${octal(km)})`, `chmod 700 ${keys}`));
    for (const name of readdirSync(keys).sort()) {
      // The public halves are meant to be read.
      if (name.endsWith('.json')) continue;
      const path = join(keys, name);
      const st = lstatSync(path);
      if (!st.isFile()) continue;
      if (st.mode & 0o077) {
        problems.push(fail('key file mode', `${path} may be read by its group or others (mode ${octal(st.mode)}): the collector refuses to start with it`, `chmod 600 ${path} (and, if others may have copied it, rotate the key)`));
      }
    }
  }
  return problems.length ? problems : [ok('file modes', `keys 0600, ${dataDir} and its database closed to other users`)];
}
