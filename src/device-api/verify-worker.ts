import { parentPort } from 'node:worker_threads';
import { KeyCache } from './key-cache.js';
import { verifyOne } from './verifier.js';

/** Checks the signatures of one batch of device requests; answers a byte per signature (1: valid). */
const keys = new KeyCache();
parentPort!.on('message', (m: { id: number; items: [string, string, string, boolean][] }) => {
  const results = new Uint8Array(m.items.length);
  for (let i = 0; i < m.items.length; i++) {
    const [key, sig, data, cache] = m.items[i]!;
    results[i] = verifyOne(keys, key, sig, data, cache) ? 1 : 0;
  }
  parentPort!.postMessage({ id: m.id, results }, [results.buffer]);
});
