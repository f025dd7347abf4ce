import type { KeyObject } from 'node:crypto';
import { publicKeyObject } from '../shared/ed25519.js';

/**
 * Public keys parsed into KeyObjects, keyed by their base64 text. A key's text maps to the
 * same KeyObject forever, so the cache needs no invalidation; it is bounded so a flood of
 * registrations cannot grow it without limit.
 */
export class KeyCache {
  private map = new Map<string, KeyObject>();
  constructor(private max = 200_000) {}

  get(b64: string): KeyObject {
    let k = this.map.get(b64);
    if (!k) {
      k = publicKeyObject(Buffer.from(b64, 'base64'));
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
      this.map.set(b64, k);
    }
    return k;
  }
}
