import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * Webhook keys the collector makes, kept as files (mode 0600) like the keys an admin gives, so
 * that delivery reads every key the same way. They live in data/keys/ beside the collector's
 * own keys, so `outpost backup --with-keys` carries them and a restore puts them back. Each key
 * has a file name of its own: a new key never overwrites one a delivery may be reading.
 */
const folder = (dataDir: string) => join(dataDir, 'keys');
const PREFIX = 'webhook-';

export function makeSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Writes the key and returns the file's path. */
export function writeSecretFile(dataDir: string, sinkId: string, secret: string): string {
  if (!/^[A-Za-z0-9-]{1,100}$/.test(sinkId)) throw new Error(`not a sink id: ${JSON.stringify(sinkId)}`);
  const dir = folder(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${PREFIX}${sinkId}-${randomBytes(4).toString('hex')}.key`);
  writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' });
  return path;
}

/**
 * Removes a key file the collector made for this sink, once no sink uses it. A file an admin
 * gave is theirs and stays, even in data/keys under a name like ours, and so does a made key
 * that an admin pointed another sink at.
 */
export function dropSecretFile(dataDir: string, path: string | undefined, sinkId: string, inUse: (path: string) => boolean): void {
  if (!path || dirname(resolve(path)) !== resolve(folder(dataDir))) return;
  const madeFor = new RegExp(`^${PREFIX}${sinkId.replace(/[^A-Za-z0-9-]/g, '')}-[0-9a-f]{8}\\.key$`);
  if (!madeFor.test(basename(path)) || inUse(path)) return;
  rmSync(path, { force: true });
}
