import { z } from 'zod';
import express, { type Request, type Response, type NextFunction } from 'express';
import { AppError, toErrorBody } from '../shared/errors.js';
import { parseOrThrow } from '../shared/validation.js';
import type { Services } from '../services.js';
import type { Route } from './route.js';
import { routes } from './routes.js';
import { openApiDocument } from './openapi.js';
import { loopbackOnly } from './loopback.js';

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
  if (opts.transport === 'tcp') app.use(loopbackOnly);
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () =>
      services.logger.debug('operator request', {
        method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - started), via: opts.transport,
      }),
    );
    next();
  });
  const actor = opts.transport === 'socket' ? 'cli' : 'operator';

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', collectorId: services.identity.collectorId });
  });
  const doc = openApiDocument(routes, opts.version);
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(doc);
  });
  app.get('/api/v1/identity', (_req, res) => {
    res.json({
      collectorId: services.identity.collectorId,
      publicKey: services.identity.publicKeyB64,
      fingerprint: services.identity.fingerprint,
      time: services.time.check(),
    });
  });

  const json = express.json({ limit: services.config.http.maxBodyBytes, strict: true });
  // The bytes as sent, whatever charset the request claims: the route decodes them strictly.
  const text = express.raw({ limit: RUM_UPLOAD_LIMIT, type: () => true });
  for (const r of routes) {
    app[r.method]('/api/v1' + r.path, r.bodyType === 'text' ? text : json, handlerFor(r, services, actor));
  }

  app.use('/api', (req, _res, next) => next(new AppError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(services));
  return app;
}

function handlerFor(r: Route, services: Services, actor: string) {
  return async (req: Request, res: Response): Promise<void> => {
    const params = r.params ? parseOrThrow(r.params, req.params, 'path') : req.params;
    const query = parseOrThrow(r.query ?? emptyQuery, { ...(req.query as object) }, 'query');
    let body: unknown = req.body;
    if (r.body) body = parseOrThrow(r.body, req.body ?? {}, 'body');
    const result = await r.handler({ params, query, body, actor, services });
    if (r.status === 204) res.status(204).end();
    else res.status(r.status ?? 200).json(result);
  };
}

const emptyQuery = z.strictObject({});

function errorHandler(services: Services) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let e: AppError;
    if (err instanceof AppError) e = err;
    else if (isBodyError(err) && err.type === 'entity.parse.failed') e = new AppError(400, 'malformed_json', `the body is not valid JSON: ${err.message}`);
    else if (isBodyError(err) && err.type === 'entity.too.large') e = new AppError(413, 'body_too_large', `the body exceeds ${err.limit} bytes`);
    else if (isBodyError(err) && typeof err.status === 'number' && err.status < 500) e = new AppError(err.status, 'bad_request', err.message);
    else {
      services.logger.error('operator request failed', { method: req.method, path: req.path, error: (err as Error)?.message });
      e = new AppError(500, 'internal', 'the request failed inside the collector; nothing was changed');
    }
    res.status(e.status).json(toErrorBody(e));
  };
}

function isBodyError(e: unknown): e is { type: string; message: string; limit?: number; status?: number } {
  return typeof e === 'object' && e !== null && 'type' in e;
}
