import { randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../shared/logger.js';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/**
 * An id a caller chose is kept when it is short and plain (a proxy's UUID or trace id). No `_`:
 * token secrets start with `opt_`, so a secret pasted into the header is never written to the
 * log; no spaces or control characters, so a line cannot be forged.
 */
const SANE_ID = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,63}$/;

export const newRequestId = (): string => randomBytes(12).toString('hex');

export function requestIdFrom(incoming: unknown): string {
  return typeof incoming === 'string' && SANE_ID.test(incoming) ? incoming : newRequestId();
}

/** The request's id, as the log line and the answer carry it. */
export const requestIdOf = (res: Response): string | undefined => res.locals.requestId as string | undefined;

/** Records the route pattern (never the path: ids and query strings stay out of the log). */
export const tagRoute = (pattern: string) => (_req: Request, res: Response, next: NextFunction): void => {
  res.locals.route = pattern;
  next();
};

/**
 * One line per operator request, written when the answer is sent (or the connection dropped):
 * its id, method, route pattern, status, duration, who asked (the user or token name, never a
 * credential) and from where. Headers, cookies and query strings are not logged.
 */
export function requestLog(logger: Logger, via: 'tcp' | 'socket') {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.locals.requestId = requestId;
    res.setHeader(REQUEST_ID_HEADER, requestId);
    // Read now: a request stream destroyed before its answer leaves req.socket null at 'close'.
    const origin = via === 'socket' ? 'socket' : (req.socket?.remoteAddress ?? 'unknown');
    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      logger.info('operator request', {
        requestId,
        method: req.method,
        route: (res.locals.route as string | undefined) ?? null,
        status: res.writableFinished ? res.statusCode : 0,
        ms: Math.round(performance.now() - started),
        actor: req.principal?.actor ?? 'anonymous',
        origin,
      });
    };
    res.once('finish', log);
    // A client that went away before its answer: still one line, status 0.
    res.once('close', log);
    next();
  };
}
