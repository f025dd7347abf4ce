/**
 * Exponential backoff with jitter: attempt n (from 1) waits between half and all of
 * base·2^(n-1), capped; spread so that collectors cut off together do not come back together.
 */
export function backoffMs(attempt: number, baseSeconds: number, maxSeconds: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, attempt - 1)) * 1000;
  return Math.round(ceiling * (0.5 + random() / 2));
}
