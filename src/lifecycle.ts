/** Exit codes of `outpost serve`, as the service manager reads them. */
export const EXIT = {
  /** Stopped on SIGTERM or SIGINT, everything drained and closed. */
  stopped: 0,
  /** Could not start, stopped after a fatal error, or could not close everything: restart it. */
  failed: 1,
  /** The configuration is invalid: a restart cannot help (sysexits' EX_CONFIG). */
  config: 78,
} as const;

/** The grace a fatal error leaves requests in flight: short, for the store is no longer trusted. */
export const FATAL_GRACE_MS = 2_000;

/**
 * What a stop may take beyond its grace (jobs, the last commit and sync, the store's close)
 * before it is given up: grace and margin together stay inside the service manager's stop timeout.
 */
export const CLOSE_MARGIN_MS = 10_000;

/** A start that failed half way, naming the step and its cause. */
export class StartError extends Error {
  constructor(step: string, cause: unknown) {
    super(`the collector could not start: ${step}: ${describe(cause)}`, { cause });
  }
}

const LISTEN_CODES: Record<string, string> = {
  EADDRINUSE: 'the address is already in use by another process',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'no local interface has this address',
};

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known = err?.code ? LISTEN_CODES[err.code] : undefined;
  return known ? `${known} (${err.code})` : (err?.message ?? String(e));
}

/** Resolves with true when `p` settles within `ms`, false when the time runs out first. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, ms));
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

/**
 * The steps of a stop, run in order: a step that fails is logged and makes the stop unclean,
 * and the steps after it still run (a listener that will not close must not keep the store open).
 */
export function shutdownSteps(logger: { error(message: string, meta?: object): void }) {
  let clean = true;
  return {
    async step(name: string, fn: () => unknown): Promise<void> {
      try {
        await fn();
      } catch (e) {
        clean = false;
        logger.error('a shutdown step failed', { step: name, error: (e as Error).message });
      }
    },
    get clean(): boolean {
      return clean;
    },
  };
}

/** Drains every listener within the grace period, and says how many requests had to be cut. */
export async function drainListeners(drains: ((graceMs: number) => Promise<number>)[], graceMs: number, logger: { warn(message: string, meta?: object): void }): Promise<void> {
  const cut = (await Promise.all(drains.map((d) => d(graceMs)))).reduce((a, b) => a + b, 0);
  if (cut) logger.warn('requests still running at the end of the grace period were cut', { requests: cut, graceMs });
}

/**
 * Runs a stop's steps, bounded: a stop that cannot finish (a disk that no longer answers a sync)
 * must still end the process before the service manager's stop timeout, and say so. Resolves
 * with whether everything closed cleanly in time.
 */
export async function boundedStop(shutdown: (graceMs: number) => Promise<boolean>, graceMs: number, logger: { info(m: string, o?: object): void; error(m: string, o?: object): void }, who: string): Promise<boolean> {
  const finished = shutdown(graceMs);
  const ended = await within(finished, graceMs + CLOSE_MARGIN_MS);
  const clean = ended && (await finished);
  if (!ended) logger.error(`the ${who} did not stop in time; exiting without it`, { graceMs, marginMs: CLOSE_MARGIN_MS });
  else logger.info(`${who} stopped`, { clean });
  return clean;
}
