import { decodePublicKey, fingerprint } from '../shared/ed25519.js';
import nacl from 'tweetnacl';
import { BundleError } from './read.js';
import type { Manifest } from './manifest.js';

/**
 * A key rotation is a bundle of kind key-rotation, signed (its manifest) by the old key and
 * carrying, in its meta, the new key and the new key's signature of this statement. Both keys
 * sign, so neither a thief of the old key alone nor a stranger's new key can rotate.
 */
export function rotationStatement(p: { subjectId: string; oldKeyId: string; newKeyId: string; fromSequence: number }): Buffer {
  return Buffer.from(['OUTPOST-ROTATE-V1', p.subjectId, p.oldKeyId, p.newKeyId, String(p.fromSequence)].join('\n'));
}

export interface Rotation {
  newKey: Buffer;
  newKeyId: string;
  fromSequence: number;
  graceDays: number;
}

export function rotationMeta(p: { subjectId: string; oldKeyId: string; newKey: Buffer; fromSequence: number; graceDays: number; signWithNew: (b: Buffer) => Buffer }) {
  const newKeyId = fingerprint(p.newKey);
  return {
    newPublicKey: p.newKey.toString('base64'),
    newKeyId,
    fromSequence: p.fromSequence,
    graceDays: p.graceDays,
    newKeyProof: p.signWithNew(rotationStatement({ subjectId: p.subjectId, oldKeyId: p.oldKeyId, newKeyId, fromSequence: p.fromSequence })).toString('base64'),
  };
}

/** Checks a verified rotation manifest: the new key's proof, and a sane sequence and grace. */
export function checkRotation(m: Manifest, subjectId: string): Rotation {
  const newKey = decodePublicKey(String(m.meta.newPublicKey ?? ''));
  const fromSequence = Number(m.meta.fromSequence);
  const graceDays = Number(m.meta.graceDays);
  const proof = Buffer.from(String(m.meta.newKeyProof ?? ''), 'base64');
  if (!newKey || fingerprint(newKey) !== m.meta.newKeyId) throw new BundleError('bad_rotation', 'the rotation statement does not carry a valid new key');
  if (!Number.isInteger(fromSequence) || fromSequence <= m.sequence) throw new BundleError('bad_rotation', 'the new key must sign from a sequence after the statement');
  if (!Number.isInteger(graceDays) || graceDays < 0 || graceDays > 365) throw new BundleError('bad_rotation', 'the grace period must be 0 to 365 days');
  const statement = rotationStatement({ subjectId, oldKeyId: m.signer.keyId, newKeyId: fingerprint(newKey), fromSequence });
  if (proof.length !== 64 || !nacl.sign.detached.verify(statement, proof, newKey)) {
    throw new BundleError('bad_rotation', 'the rotation statement is not signed by the new key');
  }
  return { newKey, newKeyId: fingerprint(newKey), fromSequence, graceDays };
}
