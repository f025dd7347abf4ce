import { z } from 'zod';

/** The one exchange format: a tar holding manifest.json, manifest.sig and gzip'd NDJSON payloads. */
export const BUNDLE_FORMAT = 'outpost-bundle';
export const BUNDLE_FORMAT_VERSION = 1;
export const BUNDLE_EXTENSION = '.opb';
export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';

export const bundleKinds = ['usage', 'response', 'enrollment-request', 'enrollment-response', 'key-rotation'] as const;
export type BundleKind = (typeof bundleKinds)[number];

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const manifestSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.literal(BUNDLE_FORMAT_VERSION, { error: `an unknown format version (this Outpost reads version ${BUNDLE_FORMAT_VERSION})` }),
  /** The type tag inside the signed bytes: a response can never pass for a usage bundle. */
  kind: z.enum(bundleKinds),
  bundleId: z.string().regex(/^bun_[0-9a-z]+$/),
  collectorId: z.string().min(1).max(100),
  accountId: z.string().max(100),
  sequence: z.number().int().nonnegative(),
  /** SHA-256 of the manifest of the last bundle of this direction that the peer has answered. */
  lastAnsweredHash: hex64.nullable(),
  /** Responses: the usage bundle this one answers. */
  answers: z.strictObject({ bundleId: z.string(), sequence: z.number().int().nonnegative(), hash: hex64 }).nullable(),
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).nullable(),
  createdAt: z.iso.datetime(),
  signer: z.strictObject({ algorithm: z.literal('ed25519', { error: 'an unknown signature algorithm' }), keyId: z.string().min(1).max(100) }),
  eventChainHead: z.strictObject({ id: z.number().int().nonnegative(), hash: hex64 }).nullable(),
  payloads: z
    .array(z.strictObject({ name: z.string().regex(/^[a-z0-9-]+\.ndjson\.gz$/), size: z.number().int().nonnegative(), records: z.number().int().nonnegative(), sha256: hex64 }))
    .max(32),
  /** Small kind-specific facts (counts, the enrolling key...). */
  meta: z.record(z.string(), z.unknown()),
});

export type Manifest = z.infer<typeof manifestSchema>;
