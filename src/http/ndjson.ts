import type { Request, Response } from 'express';
import type { AppError } from '../shared/errors.js';
import { toErrorBody } from '../shared/errors.js';
import type { ProgressEvent } from '../shared/progress.js';

export const NDJSON = 'application/x-ndjson';

/** Whether the caller asked for the answer as a stream of progress lines. */
export const wantsNdjson = (req: Request): boolean => (req.headers.accept ?? '').split(',').some((a) => a.trim().split(';')[0] === NDJSON);

/**
 * Runs a long operation and streams it as NDJSON: `{"progress": {...}}` lines while it works,
 * then one final line, `{"result": ...}` or `{"error": {...}}`. The status line is sent with the
 * first progress line: a refusal before any work (bad input, a conflict) still gets its own
 * HTTP status and JSON body, as without the stream. After that, 200 is on the wire, so the final
 * line alone says whether it failed.
 */
export async function streamNdjson(
  res: Response,
  run: (progress: (p: ProgressEvent) => void) => Promise<unknown>,
  toAppError: (err: unknown) => AppError,
): Promise<void> {
  let started = false;
  const line = (o: unknown) => {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(o) + '\n');
  };
  const progress = (p: ProgressEvent) => {
    if (!started) {
      started = true;
      // Proxies and the socket must pass each line on as it comes, not gather the answer.
      res.status(200).type(NDJSON).setHeader('cache-control', 'no-store');
      res.setHeader('x-accel-buffering', 'no');
      res.flushHeaders();
    }
    line({ progress: p });
  };
  let result: unknown;
  try {
    result = await run(progress);
  } catch (e) {
    if (!started) throw e;
    line(toErrorBody(toAppError(e)));
    res.end();
    return;
  }
  if (!started) {
    res.status(200).type(NDJSON);
    started = true;
  }
  line({ result });
  res.end();
}
