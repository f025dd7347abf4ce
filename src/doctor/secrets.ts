import { lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import { assertOwnerOnly } from '../shared/secret-file.js';
import { fail, ok, warn, type Check } from './check.js';

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * The configuration file holds no secret (secrets live in files it names), but whoever may
 * write it decides which key the collector serves and where its data goes: only its owner may.
 * The install's 0640 root:outpost is fine.
 */
export function configFileCheck(file: string | undefined): Check[] {
  if (!file) return [];
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    return [fail('config file mode', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'check --config / OUTPOST_CONFIG')];
  }
  if (mode & 0o022) return [fail('config file mode', `${file} may be changed by its group or others (mode ${octal(mode)}): whoever can write it chooses the collector's keys and folders`, `chmod 640 ${file} (owner root, group outpost)`)];
  if (mode & 0o004) return [warn('config file mode', `${file} may be read by any user (mode ${octal(mode)}): it names the site's files and upstream`, `chmod 640 ${file} (owner root, group outpost)`)];
  return [ok('config file mode', `${file} (mode ${octal(mode)}) is changed by its owner only`)];
}

interface SecretFile {
  path: string;
  /** What it holds and the setting (or place) that names it, for the message. */
  what: string;
}

/**
 * The files that hold secrets, as configured: each is refused where it is read when its group or
 * others may read it (src/shared/secret-file.ts), so the doctor says so before a start, a sync
 * or a notification fails on it. Webhook secrets are named by the sinks in the store.
 */
export function secretFiles(config: Config, db: Db | undefined): SecretFile[] {
  const out: SecretFile[] = [];
  if (config.https.keyFile) out.push({ path: config.https.keyFile, what: 'private key (https.keyFile)' });
  if (config.exchange.connection.proxyPasswordFile) out.push({ path: config.exchange.connection.proxyPasswordFile, what: 'proxy password file (exchange.connection.proxyPasswordFile)' });
  if (config.notifications.email.passwordFile) out.push({ path: config.notifications.email.passwordFile, what: 'SMTP password file (notifications.email.passwordFile)' });
  const sinks = db?.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'notify_sinks'").get()
    ? (db.prepare("SELECT name, target_json FROM notify_sinks WHERE kind = 'webhook' ORDER BY name").all() as { name: string; target_json: string }[])
    : [];
  for (const s of sinks) {
    let path: unknown;
    try {
      path = (JSON.parse(s.target_json) as { hmacKeyFile?: unknown }).hmacKeyFile;
    } catch {
      continue;
    }
    if (typeof path === 'string' && path) out.push({ path, what: `webhook secret file (sink ${s.name})` });
  }
  return out;
}

export function secretFileChecks(config: Config, db: Db | undefined): Check[] {
  const files = secretFiles(config, db);
  if (!files.length) return [];
  const problems: Check[] = [];
  for (const f of files) {
    let st;
    try {
      st = statSync(f.path);
    } catch (e) {
      problems.push(fail('secret file', `the ${f.what} ${f.path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, `create it (mode 0600, owned by the service's user), or correct the setting that names it`));
      continue;
    }
    if (!st.isFile()) {
      problems.push(fail('secret file', `the ${f.what} ${f.path} is not a regular file`, 'point the setting at the file that holds the secret'));
      continue;
    }
    try {
      assertOwnerOnly(f.path, f.what, st.mode);
    } catch (e) {
      problems.push(fail('secret file mode', (e as Error).message, `chmod 600 ${f.path}, and change the secret if others may have copied it`));
    }
  }
  return problems.length ? problems : [ok('secret files', `${files.length} secret file(s) readable by their owner only: ${files.map((f) => f.path).join(', ')}`)];
}

/**
 * Backups hold the store (token hashes, device keys, the trail), and one made with --with-keys
 * holds the identity key and the secret key: none may be read by the group or others.
 */
export function backupFileChecks(dir: string): Check[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const open: string[] = [];
  let files = 0;
  for (const name of names.sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (!st.isFile()) continue;
    files++;
    if (st.mode & 0o044) open.push(`${path} (mode ${octal(st.mode)})`);
  }
  if (open.length) {
    const shown = open.slice(0, 5).join(', ') + (open.length > 5 ? `, and ${open.length - 5} more` : '');
    return [fail('backup file mode', `${open.length} file(s) in ${dir} may be read by their group or others: ${shown}; a backup made with --with-keys holds the collector's private key`, `chmod 600 ${dir}/*; if others may have copied a backup made with --with-keys, rotate the collector key (outpost keys rotate)`)];
  }
  return files ? [ok('backup file mode', `the ${files} file(s) in ${dir} are readable by their owner only`)] : [];
}
