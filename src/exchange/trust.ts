import { DAY_MS } from '../shared/clock.js';
import { fingerprint } from '../shared/ed25519.js';
import type { ExchangeState } from './state.js';
import { BundleError, type SignerHint } from './read.js';

/**
 * The upstream key that must have signed a bundle: a pinned active key, or a key retired by
 * rotation whose grace period (for bundles already in transit) has not run out.
 */
export function upstreamKeyFor(state: ExchangeState, now: number) {
  return (m: SignerHint): Buffer => {
    const k = state.upstreamKey(m.keyId);
    if (!k) {
      const pinned = state.upstreamKeys().filter((x) => x.status === 'active').map((x) => x.key_id);
      throw new BundleError(
        'unknown_signer',
        pinned.length
          ? `the bundle is signed by ${m.keyId}, which is not a pinned upstream key (pinned: ${pinned.join(', ')})`
          : 'no upstream key is pinned: enroll with the upstream first (outpost enroll, then outpost upstream trust)',
      );
    }
    if (k.status === 'retired') {
      // A retired key vouches only for what it could have signed before its rotation: responses
      // already in transit. Never a trust change: a rotation signed by it could pin anyone's key.
      if (m.kind !== 'response') {
        throw new BundleError('retired_signer', `a ${m.kind} signed by ${m.keyId}, an upstream key retired on ${new Date(k.retired_at!).toISOString()}, is refused: a retired key signs only responses already in transit`);
      }
      const inTransit = k.grace_until !== null && now <= k.grace_until && (k.until_sequence === null || m.sequence < k.until_sequence);
      if (!inTransit) {
        throw new BundleError(
          'retired_signer',
          `the bundle (sequence ${m.sequence}) is signed by ${m.keyId}, an upstream key retired on ${new Date(k.retired_at!).toISOString()}` +
            (k.until_sequence !== null ? `; only bundles numbered below ${k.until_sequence} may still carry it, until ${new Date(k.grace_until!).toISOString()}` : ''),
        );
      }
    }
    const raw = Buffer.from(k.public_key, 'base64');
    if (fingerprint(raw) !== m.keyId) throw new BundleError('unknown_signer', 'the pinned key does not match its id');
    return raw;
  };
}

export const graceUntil = (now: number, days: number) => now + days * DAY_MS;
