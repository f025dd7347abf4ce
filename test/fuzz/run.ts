import fc from 'fast-check';

/*
 * How much fuzzing a run does. `npm test` runs a bounded number of cases from a fresh seed each
 * time (printed); `npm run bench:fuzz` sets FUZZ_RUNS high; FUZZ_SEED (and FUZZ_PATH, printed
 * with a failure) replays one.
 */
const env = process.env;
export const LONG = env.FUZZ_RUNS !== undefined;
export const SEED = env.FUZZ_SEED !== undefined ? Number(env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
const PATH = env.FUZZ_PATH || undefined;

/** Runs for a property: `base` in `npm test`, FUZZ_RUNS × weight in the long run. */
export const runs = (base: number, weight = 1): number => (LONG ? Math.max(1, Math.round(Number(env.FUZZ_RUNS) * weight)) : base);

/** Per property: a long run stops after FUZZ_MINUTES (default 10) and keeps what it found. */
const TIME_LIMIT_MS = LONG ? Number(env.FUZZ_MINUTES ?? 10) * 60_000 : 20_000;
export const timeout = TIME_LIMIT_MS + 60_000;

/** Checks a property; a failure names the counterexample, the seed and the path that replay it. */
export async function check<T>(name: string, property: fc.IAsyncPropertyWithHooks<T> | fc.IAsyncProperty<T>, numRuns: number): Promise<void> {
  console.log(`fuzz ${name}: seed ${SEED}, ${numRuns} runs`);
  const out = await fc.check(property, {
    seed: SEED, numRuns, ...(PATH ? { path: PATH } : {}), interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false,
  });
  if (out.failed) {
    const why = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
    throw new Error(`${clip(fc.defaultReportMessage(out) ?? '', 3000)}\n${clip(why, 3000)}\nreplay with: FUZZ_SEED=${SEED} FUZZ_PATH=${out.counterexamplePath ?? ''} FUZZ_RUNS=1 npx vitest run --config test/vitest.config.ts test/fuzz`);
  }
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);
