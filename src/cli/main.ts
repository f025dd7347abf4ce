#!/usr/bin/env node
// The outpost command's entry point: the only module that acts on import.
import { main } from './run.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`outpost: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
