import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Throws unless `path` is readable by its owner only, as ssh treats a key. A file left open by an
 * operator, a restore or a careless copy is refused rather than tightened in silence: whoever
 * could read it may already hold a copy, which a chmod would hide. The message gives the fix.
 */
export function assertOwnerOnly(path: string, what: string, mode = statSync(path).mode): void {
  const bits = mode & 0o777;
  if ((bits & 0o077) !== 0) {
    throw new Error(`the ${what} ${path} may be read by its group or others (mode ${bits.toString(8).padStart(4, '0')}): it is not used; run chmod 600 ${path}`);
  }
}

/** What each file of a keys folder holds, for the message that refuses it. */
function keyKind(name: string): string {
  if (/^(collector|upstream)\.key$/.test(name)) return 'private key';
  if (/\.key\.retired-/.test(name)) return 'retired private key';
  if (name === 'secrets.key') return 'secret key';
  return 'key file';
}

/**
 * Checks every secret in a keys folder (data/keys/) before anything is started: the identity
 * key, keys a rotation retired and the keys made later on first use (secrets.key for the
 * passwords kept for others, the hostname hashing key) alike. The public halves (*.json) are
 * meant to be read.
 */
export function refuseOpenKeyFiles(dir: string): void {
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('.json')) continue;
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isFile()) assertOwnerOnly(path, keyKind(name), st.mode);
  }
}

/**
 * A secret (a password) read from a file that only its owner may read: a file its group or
 * others may read is refused, with the chmod to run. One trailing newline is not part of the
 * secret. Throws an Error naming `what` and the path; callers give it their own type.
 */
export function readSecretFile(path: string, what: string): string {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`the ${what} ${path} is not a regular file`);
    mode = st.mode;
  } catch (e) {
    throw new Error((e as Error).message.startsWith('the ') ? (e as Error).message : `cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
  assertOwnerOnly(path, what, mode);
  const secret = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (secret === '') throw new Error(`the ${what} ${path} is empty`);
  return secret;
}
