import { parentPort, workerData } from 'node:worker_threads';
import { copyStore, sealCopy, type SealInput } from './seal.js';

/** The whole of a backup's work, on its own thread: see seal.ts. */
const { source, seal } = workerData as { source: string; seal: SealInput };
try {
  copyStore(source, seal.file);
  parentPort!.postMessage({ ok: true, manifest: sealCopy(seal) });
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).message, code: (e as { code?: string }).code });
}
