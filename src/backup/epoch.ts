import nacl from 'tweetnacl';
import { z } from 'zod';
import { KEY_ID, PEER_ID } from '../exchange/manifest.js';

/**
 * A collector's signed word that it was restored from a backup: from `epoch` on, its usage
 * bundles start again after sequence `fromSequence`, and what it sent after `backupCreatedAt`
 * it may send again (its reports are counted once all the same, by their ids). The Outpost
 * upstream accepts a higher epoch once, signed by a key of the collector's it has pinned, and
 * refuses bundles from an earlier epoch: a bundle made before the restore cannot come back.
 * Every usage bundle from a restored collector carries its latest statement in `meta.epoch`.
 */
export const epochStatementSchema = z.strictObject({
  collectorId: z.string().regex(PEER_ID),
  keyId: z.string().regex(KEY_ID),
  epoch: z.number().int().positive(),
  fromSequence: z.number().int().nonnegative(),
  restoredAt: z.iso.datetime(),
  backupCreatedAt: z.iso.datetime(),
  backupEventHead: z.strictObject({ id: z.number().int().nonnegative(), hash: z.string().regex(/^[0-9a-f]{64}$/) }),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'an ed25519 signature in base64'),
});

export type EpochStatement = z.infer<typeof epochStatementSchema>;
export type UnsignedEpochStatement = Omit<EpochStatement, 'signature'>;

/** The bytes signed: fixed field order behind a type tag, so it passes for nothing else that is signed. */
export function epochBytes(s: UnsignedEpochStatement): Buffer {
  return Buffer.from(
    JSON.stringify({
      type: 'outpost-epoch', version: 1, collectorId: s.collectorId, keyId: s.keyId, epoch: s.epoch, fromSequence: s.fromSequence,
      restoredAt: s.restoredAt, backupCreatedAt: s.backupCreatedAt, backupEventHead: { id: s.backupEventHead.id, hash: s.backupEventHead.hash },
    }),
  );
}

export function signEpoch(s: UnsignedEpochStatement, sign: (data: Buffer) => Buffer): EpochStatement {
  return { ...s, signature: sign(epochBytes(s)).toString('base64') };
}

/** Why a statement is not to be believed (null when it holds), against the collector's keys by fingerprint. */
export function epochFault(raw: unknown, collectorId: string, keys: ReadonlyMap<string, Buffer>): { statement: EpochStatement | null; fault: string | null } {
  const parsed = epochStatementSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { statement: null, fault: `its epoch statement is malformed: ${i.path.join('.') || '(root)'}: ${i.message}` };
  }
  const s = parsed.data;
  if (s.collectorId !== collectorId) return { statement: null, fault: `its epoch statement is collector ${s.collectorId}'s, not ${collectorId}'s` };
  const key = keys.get(s.keyId);
  if (!key) return { statement: null, fault: `its epoch statement is signed by ${s.keyId}, which is not a key of collector ${collectorId}` };
  const sig = Buffer.from(s.signature, 'base64');
  if (sig.length !== 64 || !nacl.sign.detached.verify(epochBytes(s), sig, key)) return { statement: null, fault: 'its epoch statement\'s signature does not verify: it was forged or altered' };
  return { statement: s, fault: null };
}
