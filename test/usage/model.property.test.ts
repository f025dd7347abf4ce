import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { poolFailures, pooledVerifier } from '../helpers/harness.js';
import { outcomes, programArb, runProgram } from '../helpers/model.js';
import type { PooledVerifier } from '../../src/device-api/verifier.js';

/*
 * The property: whatever devices and operators do, in whatever interleaving, the counts stay
 * exact (test/helpers/model.ts runs the programs, test/helpers/invariants.ts states the rules).
 * `npm test` runs a bounded number of programs from a fixed seed and from a random one; the
 * long run (`npm run bench:model`) sets MODEL_RUNS; MODEL_SEED and MODEL_PATH replay a failure.
 * Thread timing is not replayed: a seed gives the same programs and delays, and races that
 * depend on the delays come back most of the time, not always.
 */
const env = process.env;
const LONG = env.MODEL_RUNS !== undefined;
const RUNS = Number(env.MODEL_RUNS ?? 20);
const REPLAY = env.MODEL_SEED !== undefined ? { seed: Number(env.MODEL_SEED), path: env.MODEL_PATH } : undefined;
/** Per seed, shrinking included: a failure found late is reported partly shrunk rather than late. */
const TIME_LIMIT_MS = LONG ? Number(env.MODEL_MINUTES ?? 60) * 60_000 : 12_000;

let pool: PooledVerifier;
beforeAll(() => {
  pool = pooledVerifier(1);
});
afterAll(async () => {
  await pool.close();
  if (LONG) console.log(`model: answers over all runs\n${[...outcomes].sort().map(([k, n]) => `  ${k.padEnd(36)} ${n}`).join('\n')}`);
  expect(poolFailures).toEqual([]); // every check ran on the worker pool, none fell back inline
});

const property = () =>
  fc.asyncProperty(programArb({ maxRounds: LONG ? 16 : 12 }), async (program) => {
    const problems = await runProgram(program, pool);
    if (problems.length) throw new Error(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  });

/** Runs the property; a failure's message names the problems and the seed and path that replay it. */
async function check(seed: number, numRuns: number, path?: string): Promise<void> {
  const out = await fc.check(property(), {
    seed, numRuns, ...(path ? { path } : {}), interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false,
  });
  if (out.failed) {
    const why = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
    const replay = `MODEL_SEED=${seed} MODEL_PATH=${out.counterexamplePath ?? ''} npm run bench:model`;
    throw new Error(`${fc.defaultReportMessage(out)}\n${why}\nreplay with: ${replay}`);
  }
}

const timeout = TIME_LIMIT_MS + 30_000;

describe('the counts under random interleavings of device and operator actions', () => {
  if (REPLAY) {
    it(`then every invariant holds for seed ${REPLAY.seed}`, { timeout }, () => check(REPLAY.seed, REPLAY.path ? 1 : RUNS, REPLAY.path));
    return;
  }

  it('then every invariant holds for the fixed seed', { timeout }, () => check(20261129, LONG ? RUNS : RUNS / 2));

  it('then every invariant holds for a random seed', { timeout }, () => {
    const seed = Date.now() ^ (Math.random() * 0x7fffffff);
    console.log(`model property: random seed ${seed}`);
    return check(seed, LONG ? RUNS : RUNS / 2);
  });
});
