// Runs before `npm start`: builds only when a source is newer than the built CLI, so a start
// after `npm ci` (whose prepare step built it) or an unchanged checkout takes no build, and a
// second start, refused by the running collector's lock, never rewrites dist/ under it.
// Plain JavaScript, because it runs before anything is compiled.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist/cli/main.js');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (/\.(ts|css|html|svg)$/.test(e.name)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

const sources = Math.max(newest(join(root, 'src')), statSync(join(root, 'tsconfig.json')).mtimeMs);
if (!existsSync(built) || statSync(built).mtimeMs < sources) {
  // The collector, then the console it serves (its own tsconfig and files), as npm run build does.
  for (const step of [[join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'src/console/tsconfig.json')], [join(root, 'src/console/build.mjs')]]) {
    const r = spawnSync(process.execPath, step, { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
