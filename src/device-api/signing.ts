import type { KeyObject } from 'node:crypto';
import { sha256hex } from '../shared/hash.js';
import { signWith, verifyWith } from '../shared/ed25519.js';

/**
 * The device request signature. The device signs, with its ed25519 key, the UTF-8 text
 *
 *   OUTPOST-DEVICE-V1\n<METHOD>\n<path?query>\n<collector id>\n<device id>\n<timestamp>\n<sha256 hex of body>
 *
 * and sends it in headers. Binding the collector id stops a request made for one collector
 * being replayed at another; the timestamp bounds replays in time; the body hash binds content.
 * At registration the device id is "-" and the key is the one being registered (proof of possession).
 */
export const HEADER = {
  device: 'x-outpost-device',
  timestamp: 'x-outpost-timestamp',
  signature: 'x-outpost-signature',
  /** Version 2 of the signature on collector replies (ACKs): bound to the request, see replyString. */
  replySignature: 'x-outpost-reply-signature',
  /**
   * Version 1: the body alone. Two devices with the same ACK list got byte-identical bodies and
   * signatures, so a reply could be replayed to another device or later. Still sent until
   * LEGACY_REPLY_SIGNATURE_UNTIL so devices built against it keep working while they move to 2.
   */
  collectorSignature: 'x-outpost-collector-signature',
} as const;

/** The last moment the version-1 reply signature is sent (the README names the date). */
export const LEGACY_REPLY_SIGNATURE_UNTIL = Date.UTC(2027, 5, 30, 23, 59, 59);

export const REGISTRATION_DEVICE_ID = '-';

export function canonicalString(p: {
  method: string;
  path: string;
  collectorId: string;
  deviceId: string;
  timestamp: string;
  body: Buffer | string;
}): string {
  const bodyHash = sha256hex(p.body);
  return ['OUTPOST-DEVICE-V1', p.method.toUpperCase(), p.path, p.collectorId, p.deviceId, p.timestamp, bodyHash].join('\n');
}

export function signRequest(key: KeyObject, p: Parameters<typeof canonicalString>[0]): string {
  return signWith(key, canonicalString(p)).toString('base64');
}

export function verifyRequest(key: KeyObject, signatureB64: string, p: Parameters<typeof canonicalString>[0]): boolean {
  return verifyWith(key, canonicalString(p), Buffer.from(signatureB64, 'base64'));
}

/** What a device signs with its new key when it re-keys: proof that it holds that key. */
export function rekeyProofString(p: { collectorId: string; deviceId: string; newPublicKey: string; timestamp: string }): string {
  return ['OUTPOST-REKEY-V1', p.collectorId, p.deviceId, p.newPublicKey, p.timestamp].join('\n');
}

/**
 * What the collector signs on a reply (version 2): the reply is bound to the request it answers
 * (method, path with query, device id and the request's own timestamp) and to this collector,
 * so it is worthless for another device, another request or later.
 *
 *   OUTPOST-REPLY-V2\n<METHOD>\n<path?query>\n<collector id>\n<device id>\n<request timestamp>\n<sha256 hex of reply body>
 */
export function replyString(p: { method: string; path: string; collectorId: string; deviceId: string; timestamp: string; body: Buffer | string }): string {
  return ['OUTPOST-REPLY-V2', p.method.toUpperCase(), p.path, p.collectorId, p.deviceId, p.timestamp, sha256hex(p.body)].join('\n');
}
