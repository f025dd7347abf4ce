import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The collector's worker threads run compiled code even when a test imports the sources (see
 * src/shared/worker.ts), and end-to-end tests start dist/: both must be what the sources say.
 * `npm test` builds first; a single file run with vitest is built here when a source is newer.
 */
export default function setup(): void {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../src/build-if-stale.mjs', import.meta.url))], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`the build failed (exit ${r.status})`);
}
