import { availableParallelism } from 'node:os';
import type { Logger } from '../shared/logger.js';
import { builtWorker } from '../shared/worker.js';
import { inlineVerifier, PooledVerifier, type SignatureVerifier } from '../device-api/verifier.js';

/**
 * Device signatures are checked on other cores where the built worker can run: one thread
 * for each core beyond the main thread's, up to four (one suffices on two cores).
 */
export function createSignatureVerifier(logger: Logger): SignatureVerifier {
  const verifyWorker = builtWorker(import.meta.url, '../device-api/verify-worker.js');
  const threads = Math.max(1, Math.min(4, availableParallelism() - 1));
  return verifyWorker
    ? new PooledVerifier(verifyWorker, threads, (e, replaced) =>
        logger.error(replaced ? 'a signature worker died and was replaced' : 'signature workers keep dying; checks run on the main thread', { error: e.message }))
    : inlineVerifier();
}
