import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The built worker module `name`, beside `from` (a module's import.meta.url), or null when it
 * has not been built. A worker thread cannot load TypeScript, so a module run from its sources
 * (the tests) gets the compiled worker at the same place under dist/: the tests run the very
 * threads the collector runs (the test setup builds dist/ when a source is newer).
 */
export function builtWorker(from: string, name: string): URL | null {
  const base = from.endsWith('.ts') ? from.replace(/\/src\/(?!.*\/src\/)/, '/dist/') : from;
  if (base === from && from.endsWith('.ts')) return null;
  const url = new URL(name, base);
  return existsSync(fileURLToPath(url)) ? url : null;
}
