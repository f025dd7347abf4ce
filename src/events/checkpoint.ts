import nacl from 'tweetnacl';
import { z } from 'zod';
import { KEY_ID, PEER_ID } from '../exchange/manifest.js';

/**
 * A signed statement of the audit trail's head: "event `eventId` has hash `hash`, and the
 * trail holds `count` events up to it". The same shape travels in usage bundles, is stored by
 * the upstream, and is written one a line by the exports.
 */
export const checkpointSchema = z.strictObject({
  collectorId: z.string().regex(PEER_ID, 'a collector id: col_ and lowercase hex'),
  keyId: z.string().regex(KEY_ID, 'a key fingerprint: hex groups joined by colons'),
  eventId: z.number().int().positive(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex'),
  count: z.number().int().positive(),
  at: z.iso.datetime(),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'an ed25519 signature in base64'),
});

export type Checkpoint = z.infer<typeof checkpointSchema>;
export type UnsignedCheckpoint = Omit<Checkpoint, 'signature'>;

/**
 * The bytes signed: compact JSON with its fields in a fixed order, behind a type tag so that a
 * checkpoint's signature can never pass for a bundle manifest's (or the other way round).
 */
export function checkpointBytes(c: UnsignedCheckpoint): Buffer {
  return Buffer.from(
    JSON.stringify({ type: 'outpost-event-checkpoint', version: 1, collectorId: c.collectorId, keyId: c.keyId, eventId: c.eventId, hash: c.hash, count: c.count, at: c.at }),
  );
}

export function signCheckpoint(c: UnsignedCheckpoint, sign: (data: Buffer) => Buffer): Checkpoint {
  return { ...c, signature: sign(checkpointBytes(c)).toString('base64') };
}

/**
 * Why a checkpoint is not to be believed, or null when its signature holds. `keys` maps the
 * fingerprints of the collector's keys (current and retired) to their raw public keys.
 */
export function checkpointFault(c: Checkpoint, collectorId: string, keys: ReadonlyMap<string, Buffer>): string | null {
  if (c.collectorId !== collectorId) return `it is a checkpoint of collector ${c.collectorId}, not of ${collectorId}`;
  const key = keys.get(c.keyId);
  if (!key) return `it is signed by ${c.keyId}, which is not a key of collector ${collectorId} (known: ${[...keys.keys()].join(', ') || 'none'})`;
  const sig = Buffer.from(c.signature, 'base64');
  if (sig.length !== 64 || !nacl.sign.detached.verify(checkpointBytes(c), sig, key)) return `its signature does not verify with key ${c.keyId}: it was forged or altered`;
  return null;
}

/** A checkpoint as one JSON line of an export: tagged, so event and checkpoint lines can share a file. */
export const checkpointLine = (c: Checkpoint) => JSON.stringify({ kind: 'checkpoint', ...c });
