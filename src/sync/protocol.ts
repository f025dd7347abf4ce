import type { KeyObject } from 'node:crypto';
import { publicKeyObject, signWith, verifyWith } from '../shared/ed25519.js';

/**
 * The connected exchange between a collector and an Outpost upstream ("outpost-sync"). It moves
 * the same signed bundles as the air gap does; only the transport is new. Version 1:
 *
 *   GET  /sync/v1/hello                          who the upstream is, which versions it reads
 *   POST /sync/v1/usage                          a usage bundle's bytes → 202 (queued) or 200 (answered before)
 *   GET  /sync/v1/usage/{bundleId}/response      signed by the collector → 200 the response bundle, 202 not yet
 *   POST /sync/v1/enroll                         an enrollment request bundle → 202 (waits for the upstream's operator)
 *   GET  /sync/v1/enroll/{collectorId}           signed with the requesting key → 200 the enrollment response, 202 not yet
 *
 * A slow part (processing millions of reports) never holds one request open: a bundle is
 * accepted, then its answer fetched, each fetch waiting at most `wait` seconds (a long poll).
 * A fetch is signed, because an answer carries the account's entitlements: a request that
 * only names a bundle id proves nothing about who asks.
 */
export const SYNC_PROTOCOL = 'outpost-sync';
export const SYNC_VERSION = 1;
/** Versions this build reads; each side says which it speaks, and a request names the one it uses. */
export const SYNC_VERSIONS = [1] as const;
export const SYNC_BASE = `/sync/v${SYNC_VERSION}`;
/** Bundles travel as their exact bytes: the signature covers the manifest bytes, the manifest the payloads. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.outpost.bundle';

export const HEADER = {
  version: 'x-outpost-sync-version',
  collector: 'x-outpost-collector',
  key: 'x-outpost-key',
  date: 'x-outpost-date',
  signature: 'x-outpost-signature',
  /** On a 200 response bundle: its sequence and the usage bundle it answers, to read without opening it. */
  responseSequence: 'x-outpost-response-sequence',
} as const;

/** How far a signed request's date may be from the upstream's clock. */
export const REQUEST_WINDOW_MS = 300_000;

/**
 * The exact bytes a signed request covers: the protocol and version (so a signature made for
 * one purpose is never valid for another), the method, the request target with its query,
 * the date, the collector and its key.
 */
export function signingString(r: { method: string; target: string; date: string; collectorId: string; keyId: string }): string {
  return [`${SYNC_PROTOCOL}/${SYNC_VERSION}`, r.method.toUpperCase(), r.target, r.date, r.collectorId, r.keyId].join('\n');
}

export interface RequestSigner {
  collectorId: string;
  keyId: string;
  privateKey: KeyObject;
}

/** The headers that sign one request: put them on a GET whose target (path and query) is `target`. */
export function signRequest(s: RequestSigner, method: string, target: string, now: number): Record<string, string> {
  const date = new Date(now).toISOString();
  const sig = signWith(s.privateKey, signingString({ method, target, date, collectorId: s.collectorId, keyId: s.keyId }));
  return {
    [HEADER.version]: String(SYNC_VERSION),
    [HEADER.collector]: s.collectorId,
    [HEADER.key]: s.keyId,
    [HEADER.date]: date,
    [HEADER.signature]: sig.toString('base64'),
  };
}

export class SignedRequestError extends Error {
  constructor(
    readonly code: 'unsigned' | 'bad_date' | 'unknown_collector' | 'bad_signature',
    message: string,
  ) {
    super(message);
  }
}

const header = (h: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? undefined : v; // a header sent twice is not a signature
};

/**
 * Checks a signed request: its date within the window of `now`, and its signature by the key
 * `keyFor` returns for the collector and key it names (undefined: not enrolled, or not its
 * key). Returns the collector it proves.
 */
export function verifyRequest(
  r: { method: string; target: string; headers: Record<string, string | string[] | undefined> },
  keyFor: (collectorId: string, keyId: string) => Buffer | undefined,
  now: number,
): { collectorId: string; keyId: string } {
  const collectorId = header(r.headers, HEADER.collector);
  const keyId = header(r.headers, HEADER.key);
  const date = header(r.headers, HEADER.date);
  const sig = header(r.headers, HEADER.signature);
  if (!collectorId || !keyId || !date || !sig) {
    throw new SignedRequestError('unsigned', `a signed request carries ${HEADER.collector}, ${HEADER.key}, ${HEADER.date} and ${HEADER.signature}`);
  }
  const at = Date.parse(date);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(date) || Number.isNaN(at)) {
    throw new SignedRequestError('bad_date', `${HEADER.date} must be an ISO 8601 UTC time`);
  }
  if (Math.abs(at - now) > REQUEST_WINDOW_MS) {
    throw new SignedRequestError('bad_date', `${HEADER.date} ${date} is more than ${REQUEST_WINDOW_MS / 1000} s from the upstream's clock (${new Date(now).toISOString()})`);
  }
  const key = keyFor(collectorId, keyId);
  if (!key) throw new SignedRequestError('unknown_collector', `collector ${collectorId} with key ${keyId} is not enrolled here`);
  const raw = Buffer.from(sig, 'base64');
  if (!verifyWith(publicKeyObject(key), signingString({ method: r.method, target: r.target, date, collectorId, keyId }), raw)) {
    throw new SignedRequestError('bad_signature', `the request signature does not verify with key ${keyId}`);
  }
  return { collectorId, keyId };
}
