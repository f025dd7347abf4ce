import { parentPort, workerData } from 'node:worker_threads';
import { BundleError } from '../exchange/read.js';
import type { Manifest } from '../exchange/manifest.js';
import { readReportBatches, type ReportCheck } from './report-batches.js';

/**
 * Processing's parsing half, on its own thread: decompresses, parses and checks the reports
 * while the main thread writes the previous batches. A few batches may be in flight; the main
 * thread returns a credit for each it has written, so a slow disk never fills memory.
 */
const IN_FLIGHT = 4;
const { file, manifest, check } = workerData as { file: string; manifest: Manifest; check: ReportCheck };
const port = parentPort!;
let credits = IN_FLIGHT;
let wake: (() => void) | null = null;
port.on('message', () => {
  credits++;
  wake?.();
  wake = null;
});
try {
  const result = await readReportBatches(file, manifest, check, async (batch) => {
    while (credits === 0) await new Promise<void>((r) => (wake = r));
    credits--;
    port.postMessage({ type: 'batch', batch });
  });
  port.postMessage({ type: 'done', result });
} catch (e) {
  port.postMessage({ type: 'error', code: e instanceof BundleError ? e.code : null, message: (e as Error).message });
}
