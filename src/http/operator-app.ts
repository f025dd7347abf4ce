import { z } from 'zod';
import express, { type Request, type Response, type NextFunction } from 'express';
import { AppError, toErrorBody } from '../shared/errors.js';
import { parseOrThrow } from '../shared/validation.js';
import type { Services } from '../services.js';
import type { Route } from './route.js';
import { routes } from './routes.js';
import { isLoopbackAddress, loopbackOnly } from './loopback.js';
import { securityHeaders } from './security-headers.js';
import { bodyTypeGuard, crossSiteGuard } from './cross-site.js';
import { requestError } from './request-errors.js';
import { fileProblem } from '../shared/files.js';
import { authenticate } from '../users/authenticate.js';
import { withRequest } from '../shared/request-context.js';
import { admit, scopeOf } from '../users/authorize.js';
import { streamNdjson, wantsNdjson } from './ndjson.js';
import { requestIdOf, requestLog, tagRoute } from './request-log.js';
import { Download, sendDownload } from './download.js';
import { bytesToFile } from './upload.js';

const RUM_UPLOAD_LIMIT = '64mb';

export interface OperatorAppOptions {
  /** The local socket is already private (mode 0600); TCP is checked for loopback. */
  transport: 'tcp' | 'socket';
  version: string;
}

/** The operator API: express routes built from the one route table. */
export function createOperatorApp(services: Services, opts: OperatorAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // First, so that a request refused by any guard below still has its id and its line.
  app.use(requestLog(services.logger, opts.transport));
  app.use(securityHeaders());
  if (opts.transport === 'tcp') app.use(loopbackOnly(() => services.users.any()), crossSiteGuard(services.config.http.allowedOrigins));
  // Every event written while serving a request records where it came from.
  app.use((req, _res, next) => withRequest({ origin: opts.transport === 'socket' ? 'socket' : (req.socket.remoteAddress ?? 'unknown') }, next));
  app.use(authenticate(services, opts.transport));

  const json = express.json({ limit: services.config.http.maxBodyBytes, strict: true });
  // The bytes as sent, whatever charset the request claims: the route decodes them strictly.
  const text = express.raw({ limit: RUM_UPLOAD_LIMIT, type: () => true });
  const jsonOnly = bodyTypeGuard('json');
  const xmlOnly = bodyTypeGuard('xml');
  const bytesOnly = bodyTypeGuard('bytes');
  for (const r of routes) {
    const parse = r.bodyType === 'text' ? [xmlOnly, text] : r.bodyType === 'bytes' ? [bytesOnly, uploadTo(r, services)] : [jsonOnly, json];
    app[r.method](routePath(r), tagRoute(routePath(r)), gate(r, opts.transport), ...parse, handlerFor(r, services, opts.version));
  }

  app.use('/api', (req, _res, next) => next(new AppError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(services));
  return app;
}

function uploadTo(r: Route, services: Services) {
  if (!r.upload) throw new Error(`route ${r.method.toUpperCase()} ${r.path} takes bytes but says not how many`);
  const u = r.upload;
  return (req: Request, res: Response, next: NextFunction) => {
    const o = u(services);
    void bytesToFile(() => o.dir, o.limit, o.setting, o.name)(req, res, next);
  };
}

/** Where a route is served: under /api/v1, or at the root for the few outside the versioned API. */
export const routePath = (r: Route): string => (r.at === 'root' ? '' : '/api/v1') + r.path;

/** Refuses, before its body is read, a caller the route's permission rules out on every VA. */
function gate(r: Route, transport: 'tcp' | 'socket') {
  return (req: Request, _res: Response, next: NextFunction): void => {
    try {
      // A session cookie that no longer holds says why, rather than "authentication required".
      if (!req.principal && req.authProblem && r.permission !== 'public') throw req.authProblem;
      // The loopback guard before this has already refused a loopback request whose Host is not loopback's.
      admit(r, req.principal, { loopback: transport === 'tcp' && isLoopbackAddress(req.socket.remoteAddress) });
      next();
    } catch (e) {
      next(e);
    }
  };
}

function handlerFor(r: Route, services: Services, version: string) {
  return async (req: Request, res: Response): Promise<void> => {
    // After a failed WAL sync the store's state on disk is unknown: no write until a restart.
    const failed = r.method === 'get' ? null : services.ingest.commits.failed;
    if (failed) throw failed;
    const principal = req.principal ?? null;
    // Roles held on some VAs only: each VA the request touches must be one of theirs, judged
    // before the rest of the request is (a VA that is not theirs is refused whatever else is wrong).
    const vaIds = principal && !admit(r, principal).global
      ? scopeOf(r, principal, services, { params: req.params, query: { ...(req.query as object) }, body: req.body })
      : null;
    const params = r.params ? parseOrThrow(r.params, req.params, 'path') : req.params;
    const query = parseOrThrow(r.query ?? emptyQuery, { ...(req.query as object) }, 'query');
    let body: unknown = req.body;
    if (r.body) body = parseOrThrow(r.body, req.body ?? {}, 'body');
    const actor = principal?.actor ?? 'anonymous';
    const remote = req.socket.remoteAddress ?? 'socket';
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const setHeader = (name: string, value: string) => void res.setHeader(name, value);
    const input = { params, query, body, actor, services, version, vaIds, principal, remote, secure, setHeader, progress: () => {} };
    if (r.progress && wantsNdjson(req)) {
      return streamNdjson(res, (progress) => Promise.resolve(r.handler({ ...input, progress })), (e) => appError(services, e, req, res));
    }
    const result = await r.handler(input);
    if (result instanceof Download) return sendDownload(res, result, r.contentType ?? 'application/octet-stream');
    if (r.status === 204) res.status(204).end();
    else if (r.contentType) res.status(r.status ?? 200).type(r.contentType).send(result);
    else res.status(r.status ?? 200).json(result);
  };
}

const emptyQuery = z.strictObject({});

/** What the caller is told of a failure: its own refusal, a known cause named, else an internal error logged here. */
function appError(services: Services, err: unknown, req: Request, res: Response): AppError {
  if (err instanceof AppError) return err;
  const mistake = requestError(err) ?? fileProblem(err) ?? storageProblem(err) ?? closedStore(services);
  if (mistake) {
    if (mistake.status === 503) {
      if (!res.headersSent) res.setHeader('retry-after', '30');
      services.logger.error('operator request not stored', { requestId: requestIdOf(res), method: req.method, route: res.locals.route ?? null, error: mistake.details.sqlite });
    }
    return mistake;
  }
  services.logger.error('operator request failed', { requestId: requestIdOf(res), method: req.method, route: res.locals.route ?? null, error: (err as Error)?.message });
  return new AppError(500, 'internal', 'the request failed inside the collector; nothing was changed');
}

function errorHandler(services: Services) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const e = appError(services, err, req, res);
    const wait = (e.details as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    if (e.status === 429 && typeof wait === 'number') res.setHeader('retry-after', String(wait));
    // The id lets an operator find the request's log line from the error a client shows them.
    const body = toErrorBody(e);
    const requestId = requestIdOf(res);
    res.status(e.status).json(requestId ? { error: { ...body.error, requestId } } : body);
  };
}

/**
 * The store refused a write (disk full, I/O error, busy): nothing was changed, and the cause is
 * the host's to fix, not a fault to report as internal. The device API answers the same.
 */
/** The store closed under a request (a stop in progress): the collector is not ready, not broken. */
function closedStore(services: Services): AppError | null {
  return services.db.open ? null : new AppError(503, 'storage_unavailable', 'the database is closed (the collector is stopping); nothing was changed: retry later', { database: 'closed' });
}

function storageProblem(err: unknown): AppError | null {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (!code.startsWith('SQLITE_')) return null;
  const why = code.startsWith('SQLITE_FULL') ? 'the disk holding the database is full' : code.startsWith('SQLITE_BUSY') ? 'the database is busy' : 'the database could not be written';
  return new AppError(503, 'storage_unavailable', `${why} (${code}); nothing was changed: free space or check the disk, then retry`, { sqlite: code });
}
