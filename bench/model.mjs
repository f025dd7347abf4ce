// npm run bench:model: the long run of the count property test (test/usage/model.property.test.ts).
// Random programs of register, report, batch, duplicate, reused id, move, deregister,
// re-register, stale evaluation, RUM import and exchange round trips, issued concurrently
// through the real server and the production signature pool; the invariants are checked after
// each. MODEL_RUNS programs per seed (default 300), a fixed seed and a random one; MODEL_SEED
// (and MODEL_PATH, both printed by a failure) replays one; MODEL_MINUTES bounds each seed's run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './lib.mjs';

const runs = process.env.MODEL_RUNS ?? '300';
const started = Date.now();
const r = spawnSync(
  process.execPath,
  [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/vitest.config.ts', 'test/usage/model.property.test.ts'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, MODEL_RUNS: runs } },
);
const seconds = (Date.now() - started) / 1000;
const what = process.env.MODEL_SEED ? `seed ${process.env.MODEL_SEED} replayed` : `${runs} programs per seed`;
console.log(`model: ${what}, ${seconds.toFixed(1)} s in all, ${r.status === 0 ? 'every invariant held' : 'FAILED (seed and counterexample above)'}`);
process.exit(r.status ?? 1);
