import { z } from 'zod';

/** The one exchange format: a tar holding manifest.json, manifest.sig and gzip'd NDJSON payloads. */
export const BUNDLE_FORMAT = 'outpost-bundle';
/**
 * Version 2 adds license transfers: a usage bundle may carry transfers.ndjson.gz and a response
 * transfer-outcomes.ndjson.gz. A bundle is written as version 2 only when it carries one of
 * them, so that a collector with no transfer keeps talking to an upstream that reads version 1,
 * and an upstream answers a version 1 bundle with a version 1 response. Both are read.
 */
export const BUNDLE_FORMAT_VERSION = 2;
export const READABLE_FORMAT_VERSIONS = [1, 2] as const;
/** The payloads version 2 introduced: a bundle that lists one is a version 2 bundle. */
export const VERSION_2_PAYLOADS: readonly string[] = ['transfers.ndjson.gz', 'transfer-outcomes.ndjson.gz'];

export function formatVersionFor(payloads: readonly { name: string }[]): 1 | 2 {
  return payloads.some((p) => VERSION_2_PAYLOADS.includes(p.name)) ? 2 : 1;
}
export const BUNDLE_EXTENSION = '.opb';
export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';

export const bundleKinds = ['usage', 'response', 'enrollment-request', 'enrollment-response', 'key-rotation'] as const;
export type BundleKind = (typeof bundleKinds)[number];

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
/**
 * Ids that cross the air gap get a strict character set: the upstream names files after
 * collector ids, and `x/../../../../…` once wrote outside its folder.
 */
export const PEER_ID = /^(col|ups)_[0-9a-f-]{1,64}$/;
export const ACCOUNT_ID = /^acc_[0-9a-f-]{1,64}$/;
export const KEY_ID = /^[0-9a-f]{2,4}(:[0-9a-f]{2,4}){1,31}$/;

export const manifestSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.union([z.literal(1), z.literal(2)], { error: `an unknown format version (this Outpost reads versions ${READABLE_FORMAT_VERSIONS.join(' and ')})` }),
  /** The type tag inside the signed bytes: a response can never pass for a usage bundle. */
  kind: z.enum(bundleKinds),
  bundleId: z.string().regex(/^bun_[0-9a-z]+$/),
  collectorId: z.string().regex(PEER_ID, 'a collector id: col_ (or ups_) and lowercase hex'),
  accountId: z.union([z.literal(''), z.string().regex(ACCOUNT_ID, 'an account id: acc_ and lowercase hex')]),
  sequence: z.number().int().nonnegative(),
  /** SHA-256 of the manifest of the last bundle of this direction that the peer has answered. */
  lastAnsweredHash: hex64.nullable(),
  /** Responses: the usage bundle this one answers. */
  answers: z.strictObject({ bundleId: z.string().regex(/^bun_[0-9a-z]+$/), sequence: z.number().int().nonnegative(), hash: hex64 }).nullable(),
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).nullable(),
  createdAt: z.iso.datetime(),
  signer: z.strictObject({ algorithm: z.literal('ed25519', { error: 'an unknown signature algorithm' }), keyId: z.string().regex(KEY_ID, 'a key fingerprint: hex groups joined by colons') }),
  eventChainHead: z.strictObject({ id: z.number().int().nonnegative(), hash: hex64 }).nullable(),
  payloads: z
    .array(z.strictObject({ name: z.string().regex(/^[a-z0-9-]+\.ndjson\.gz$/), size: z.number().int().nonnegative(), records: z.number().int().nonnegative(), sha256: hex64 }))
    .max(32),
  /**
   * Small kind-specific facts (counts, the enrolling key...). A usage bundle may carry
   * `eventCheckpoint`: the collector's signed checkpoint of its audit trail (events/checkpoint.ts).
   */
  meta: z.record(z.string(), z.unknown()),
});

export type Manifest = z.infer<typeof manifestSchema>;
