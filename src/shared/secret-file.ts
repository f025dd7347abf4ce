import { readFileSync, statSync } from 'node:fs';

/**
 * A secret (a password) read from a file that only its owner may read, as ssh treats a key: a
 * file its group or others may read is refused, with the chmod to run. One trailing newline is
 * not part of the secret. Throws an Error naming `what` and the path; callers give it their own type.
 */
export function readSecretFile(path: string, what: string): string {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`the ${what} ${path} is not a regular file`);
    mode = st.mode & 0o777;
  } catch (e) {
    throw new Error((e as Error).message.startsWith('the ') ? (e as Error).message : `cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new Error(`the ${what} ${path} may be read by its group or others (mode ${mode.toString(8).padStart(4, '0')}): it is not used; run chmod 600 ${path}`);
  }
  const secret = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (secret === '') throw new Error(`the ${what} ${path} is empty`);
  return secret;
}
