import { createPublicKey, createPrivateKey, sign, verify, createHash, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';

// node:crypto takes raw ed25519 keys only inside DER wrappers; these are the fixed prefixes.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface KeyPair {
  publicKey: Buffer; // raw 32 bytes
  seed: Buffer; // raw 32-byte private seed
}

/** Key generation is rare, so tweetnacl's portable implementation is fine here. */
export function generateKeyPair(): KeyPair {
  const kp = nacl.sign.keyPair();
  return { publicKey: Buffer.from(kp.publicKey), seed: Buffer.from(kp.secretKey.subarray(0, 32)) };
}

export function publicKeyFromSeed(seed: Buffer): Buffer {
  return Buffer.from(nacl.sign.keyPair.fromSeed(seed).publicKey);
}

export function publicKeyObject(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new Error('an ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function privateKeyObject(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** Per-request signatures use node:crypto: about 400 times faster than tweetnacl here. */
export function signWith(key: KeyObject, data: Buffer | string): Buffer {
  return sign(null, typeof data === 'string' ? Buffer.from(data) : data, key);
}

export function verifyWith(key: KeyObject, data: Buffer | string, signature: Buffer): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, typeof data === 'string' ? Buffer.from(data) : data, key, signature);
  } catch {
    return false;
  }
}

/** A short, human-comparable fingerprint of a public key: SHA-256, first 16 bytes, grouped. */
export function fingerprint(raw: Buffer): string {
  const hex = createHash('sha256').update(raw).digest('hex').slice(0, 32);
  return hex.match(/.{4}/g)!.join(':');
}

export function publicKeyPem(raw: Buffer): string {
  return publicKeyObject(raw).export({ format: 'pem', type: 'spki' }).toString();
}

/** Decodes a base64 ed25519 public key, or returns null if it is not exactly 32 bytes. */
export function decodePublicKey(b64: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) return null;
  const raw = Buffer.from(b64, 'base64');
  return raw.length === 32 ? raw : null;
}
