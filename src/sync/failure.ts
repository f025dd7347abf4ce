import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { backoffMs } from './backoff.js';
import { errorCode, errorMessage } from './reply.js';
import { isTransportFailure } from './transport.js';

/** A sync that cannot go on: a stable code and words for the status; retryable ones were retried first. */
export class SyncFailure extends AppError {
  constructor(
    code: string,
    message: string,
    readonly unreachable = false,
  ) {
    super(502, code, message);
  }
}

/** An answer of the upstream refusing what was asked, with its code and words. */
export function upstreamRefusal(what: string, r: { status: number; json?: unknown }): SyncFailure {
  const code = errorCode(r.json) ?? `http_${r.status}`;
  return new SyncFailure(code, `${what}: ${r.status} ${errorMessage(r.json) || 'without a reason'} (${code})`);
}

/** Waits, or less if the signal aborts; either way nothing is left listening on the signal. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

export interface RetryPolicy {
  attempts: number;
  baseSeconds: number;
  maxSeconds: number;
}

/**
 * Retries a step that failed in a way that may pass (the network, a busy upstream) with backoff;
 * after the last attempt, or once `signal` aborts, the failure is the sync's, marked unreachable.
 */
export async function retrying<T>(what: string, fn: () => Promise<T>, policy: RetryPolicy, signal: AbortSignal, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(isTransportFailure(e) && e.retryable)) throw e;
      if (attempt >= policy.attempts || signal.aborted) {
        throw new SyncFailure(e.code, `${what}: ${e.message} (after ${attempt} attempt${attempt > 1 ? 's' : ''})`, true);
      }
      const wait = backoffMs(attempt, policy.baseSeconds, policy.maxSeconds);
      logger.info('sync step failed; trying again', { step: what, attempt, waitMs: wait, error: e.message });
      await sleep(wait, signal);
    }
  }
}
