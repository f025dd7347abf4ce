import { spawnSync } from 'node:child_process';
import { cpSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { envFor, serve, tempDataDir } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A copy of the project's sources and build, so that touching a source here never rebuilds the dist/ other tests run. */
function projectCopy(): string {
  const dir = tempDir('start');
  for (const f of ['src', 'dist', 'tsconfig.json', 'package.json', 'config']) cpSync(join(root, f), join(dir, f), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}
const builtAt = (dir: string) => statSync(join(dir, 'dist/cli/main.js')).mtimeMs;
const prestart = (dir: string) => spawnSync(process.execPath, [join(dir, 'src/build-if-stale.mjs')], { encoding: 'utf8', timeout: 120_000 });

describe('npm start builds only what changed', () => {
  it('when nothing changed since the build, then no build runs; when a source changed, it builds once', () => {
    const dir = projectCopy();
    const before = builtAt(dir);
    expect(prestart(dir).status).toBe(0);
    expect(builtAt(dir)).toBe(before); // up to date: dist/ untouched

    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'src/main.ts'), later, later);
    expect(prestart(dir).status).toBe(0);
    expect(builtAt(dir)).toBeGreaterThan(before);
  }, 150_000); // a whole TypeScript build of the project: about 20 s here, several times that on a busy machine

  it('when a collector runs and `npm start` is run again, then it is refused by the lock without touching dist/', async () => {
    const dataDir = tempDataDir();
    const first = await serve(dataDir);
    try {
      const before = builtAt(root);
      const started = Date.now();
      const second = spawnSync('npm', ['start', '--silent'], {
        cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...envFor(dataDir), OUTPOST_HTTP_PORT: '0' },
      });
      console.log(`a second npm start was refused in ${Date.now() - started} ms`);
      expect(second.status).not.toBe(0);
      expect(second.stderr + second.stdout).toContain('is in use by another Outpost process');
      expect(builtAt(root)).toBe(before);
    } finally {
      await first.stop();
    }
  }, 90_000);
});
