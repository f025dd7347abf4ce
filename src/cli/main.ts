#!/usr/bin/env node
// The outpost command's entry point: the only module that acts on import.
import { nodeSupported } from '../shared/node-version.js';

// Checked before the rest loads: an older Node fails on a missing export, with no hint why.
if (!nodeSupported(process.version)) {
  process.stderr.write(`outpost: Node.js ${process.version} is too old; Outpost needs Node.js 20.12 or later (20.x from 20.12, or 22+)\n`);
  process.exit(1);
}
const { main } = await import('./run.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`outpost: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
