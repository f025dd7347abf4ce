import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The built worker module beside `from` (a module's import.meta.url), or null where none can
 * run: the tests run the TypeScript sources, which a worker thread cannot load, and then the
 * caller does the same work inline through the same function the worker calls.
 */
export function builtWorker(from: string, name: string): URL | null {
  if (from.endsWith('.ts')) return null;
  const url = new URL(name, from);
  return existsSync(fileURLToPath(url)) ? url : null;
}
