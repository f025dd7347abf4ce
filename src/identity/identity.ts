import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { fingerprint, generateKeyPair, privateKeyObject, publicKeyFromSeed } from '../shared/ed25519.js';
import { refuseOpenKeyFiles } from '../shared/secret-file.js';

export interface Identity {
  collectorId: string;
  publicKey: Buffer;
  publicKeyB64: string;
  fingerprint: string;
  privateKey: KeyObject;
  /** Detached ed25519 signature with tweetnacl: bundles and statements, never the hot path. */
  signDetached(data: Buffer): Buffer;
}

/**
 * The collector's ed25519 identity: created on first start, reused after. The private seed
 * lives in its own file with mode 0600 inside a 0700 folder, and never leaves this module
 * except as a KeyObject (which does not print its secret). A key file of the folder that its
 * group or others may read is refused, with the chmod to run.
 */
export function loadOrCreateIdentity(dataDir: string, role: 'collector' | 'upstream' = 'collector'): { identity: Identity; created: boolean } {
  const dir = join(dataDir, 'keys');
  const idFile = join(dir, `${role}.json`);
  const keyFile = join(dir, `${role}.key`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  let created = false;
  if (!existsSync(keyFile)) {
    const kp = generateKeyPair();
    // 'wx' fails if another process created it first, rather than overwriting a key.
    writeFileSync(keyFile, kp.seed.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    writeFileSync(
      idFile,
      JSON.stringify({ collectorId: `${role === 'collector' ? 'col' : 'ups'}_${randomUUID()}`, publicKey: kp.publicKey.toString('base64') }, null, 2) + '\n',
      { mode: 0o644 },
    );
    created = true;
  }
  // Every key of the folder, not just this one: secrets.key and the others are read later, on
  // first use, and a start that will have to refuse them should refuse now.
  refuseOpenKeyFiles(dir);
  const seed = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
  if (seed.length !== 32) throw new Error(`${keyFile} does not hold a 32-byte ed25519 seed`);
  const publicKey = publicKeyFromSeed(seed);
  const meta = JSON.parse(readFileSync(idFile, 'utf8')) as { collectorId: string; publicKey: string };
  if (meta.publicKey !== publicKey.toString('base64')) {
    throw new Error(`${idFile} names a public key that does not match ${keyFile}`);
  }
  return {
    identity: {
      collectorId: meta.collectorId,
      publicKey,
      publicKeyB64: publicKey.toString('base64'),
      fingerprint: fingerprint(publicKey),
      privateKey: privateKeyObject(seed),
      signDetached: (data: Buffer) => Buffer.from(nacl.sign.detached(data, nacl.sign.keyPair.fromSeed(seed).secretKey)),
    },
    created,
  };
}

export interface NextKey {
  seed: Buffer;
  publicKey: Buffer;
  signDetached(data: Buffer): Buffer;
}

/** A new key pair, not yet in use: it signs the rotation statement before it takes over. */
export function nextKey(): NextKey {
  const kp = generateKeyPair();
  return { ...kp, signDetached: (data) => Buffer.from(nacl.sign.detached(data, nacl.sign.keyPair.fromSeed(kp.seed).secretKey)) };
}

/**
 * Makes the new key this side's identity: the old seed is kept beside it (mode 0600, named by
 * its fingerprint) for the record, the new one replaces it atomically, and the identity object
 * every service holds is updated in place.
 */
export function commitKey(dataDir: string, role: 'collector' | 'upstream', identity: Identity, next: NextKey): void {
  const dir = join(dataDir, 'keys');
  const keyFile = join(dir, `${role}.key`);
  const idFile = join(dir, `${role}.json`);
  copyFileSync(keyFile, join(dir, `${role}.key.retired-${identity.fingerprint.replace(/:/g, '')}`));
  chmodSync(join(dir, `${role}.key.retired-${identity.fingerprint.replace(/:/g, '')}`), 0o600);
  writeFileSync(`${keyFile}.new`, next.seed.toString('base64') + '\n', { mode: 0o600 });
  renameSync(`${keyFile}.new`, keyFile);
  writeFileSync(idFile, JSON.stringify({ collectorId: identity.collectorId, publicKey: next.publicKey.toString('base64') }, null, 2) + '\n', { mode: 0o644 });
  const seed = next.seed;
  Object.assign(identity, {
    publicKey: next.publicKey,
    publicKeyB64: next.publicKey.toString('base64'),
    fingerprint: fingerprint(next.publicKey),
    privateKey: privateKeyObject(seed),
    signDetached: (data: Buffer) => Buffer.from(nacl.sign.detached(data, nacl.sign.keyPair.fromSeed(seed).secretKey)),
  });
}
