// The console's build step after tsc: its page (with the icon set inlined, so that icons need
// no request of their own), its style sheet and its favicon, copied into dist/console.
// Plain JavaScript, because it runs as part of the build.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = join(here, '..', '..', 'dist', 'console');
mkdirSync(out, { recursive: true });
const icons = readFileSync(join(here, 'static', 'icons.svg'), 'utf8').trim();
const page = readFileSync(join(here, 'static', 'index.html'), 'utf8').replace('{{icons}}', icons);
writeFileSync(join(out, 'index.html'), page);
for (const f of ['console.css', 'favicon.svg']) copyFileSync(join(here, 'static', f), join(out, f));
