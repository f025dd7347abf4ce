import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOwnerOnly } from '../shared/secret-file.js';

/**
 * Encrypts the secrets Outpost keeps for others (device passwords) with AES-256-GCM under a key
 * that lives apart from the database, in data/keys/ (mode 0600): a copy of the database alone
 * reveals no password. Each secret is bound to the record it belongs to (its id is the GCM
 * additional data), so a ciphertext moved to another record does not decrypt.
 */
export class SecretBox {
  private loaded: Buffer | undefined;
  /** The key is made on first use: a collector that keeps no secret for anyone has none. */
  constructor(private dataDir: string) {}

  private get key(): Buffer {
    return (this.loaded ??= SecretBox.load(this.dataDir));
  }

  private static load(dataDir: string): Buffer {
    const dir = join(dataDir, 'keys');
    const file = join(dir, 'secrets.key');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // 'wx': a key made by another process first is used, never overwritten.
    if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    assertOwnerOnly(file, 'secret key');
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key: restore it from the backup that holds it`);
    return key;
  }

  seal(plain: string, boundTo: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(boundTo));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64'), c.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  open(sealed: string, boundTo: string): string {
    const [v, iv, tag, body] = sealed.split(':');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed secret');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    d.setAAD(Buffer.from(boundTo));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
  }
}
