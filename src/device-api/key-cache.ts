import type { KeyObject } from 'node:crypto';
import { publicKeyObject } from '../shared/ed25519.js';

/**
 * Public keys parsed into KeyObjects, keyed by their base64 text, least recently used first
 * out. A key's text maps to the same KeyObject forever, so the cache needs no invalidation.
 * It is bounded to what a signature worker's small heap holds (a few hundred bytes a key):
 * 200,000 keys once filled a worker's heap and killed it. Only keys of registered devices are
 * cached (see SignatureVerifier.verify), so a flood of registrations cannot evict them.
 */
export class KeyCache {
  private map = new Map<string, KeyObject>();
  constructor(private max = 50_000) {}

  get(b64: string): KeyObject {
    let k = this.map.get(b64);
    if (k) {
      this.map.delete(b64); // re-inserted: a Map iterates in insertion order, oldest first
    } else {
      k = publicKeyObject(Buffer.from(b64, 'base64'));
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    }
    this.map.set(b64, k);
    return k;
  }

  /** A key parsed for one check and not kept (a registration's, which may be anyone's). */
  once(b64: string): KeyObject {
    return this.map.get(b64) ?? publicKeyObject(Buffer.from(b64, 'base64'));
  }

  get size(): number {
    return this.map.size;
  }
}
