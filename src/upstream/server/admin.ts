import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../shared/logger.js';
import { AppError } from '../../shared/errors.js';
import type { ProgressEvent } from '../../shared/progress.js';
import { ADMIN_ROUTES, type OperationName, type Operations } from './operations.js';
import { readJson, sendError, sendFailure, sendJson } from './respond.js';
import type { Serial } from './serial.js';
import { NDJSON } from '../../http/ndjson.js';

const wantsNdjson = (req: IncomingMessage) => (req.headers.accept ?? '').split(',').some((a) => a.trim().split(';')[0] === NDJSON);

/**
 * The upstream's own CLI, over its 0600 unix socket: /admin/v1, one route an operation. Its
 * writes join the one write queue, after any job already running.
 */
export function createAdminHandler(ops: Operations, serial: Serial, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = Object.entries(ADMIN_ROUTES) as [OperationName, (typeof ADMIN_ROUTES)[OperationName]][];
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/admin/v1/healthz') return sendJson(res, 200, { status: 'ok' });
    const found = routes.find(([, r]) => r.path === path);
    if (!found) return sendError(res, 404, 'not_found', `no route ${path}`);
    const [name, route] = found;
    if (req.method !== route.method) return sendError(res, 405, 'method_not_allowed', `${path} takes ${route.method}`, { allow: route.method });
    const stream = route.progress && wantsNdjson(req) ? ndjson(res) : null;
    void (async () => {
      try {
        const args = await readJson(req);
        const call = () => (ops[name] as (a: unknown, p?: (e: ProgressEvent) => void) => Promise<unknown>)(args, stream?.progress);
        const result = await (route.writes ? serial.run(call) : call());
        if (stream?.started()) stream.end({ result });
        else sendJson(res, 200, result);
      } catch (e) {
        if (!stream?.started()) return sendFailure(res, e, logger, req);
        // 200 is on the wire already: the last line alone says it failed.
        if (!(e instanceof AppError)) logger.error('request failed', { method: req.method, url: req.url, error: (e as Error).message });
        stream.end(e instanceof AppError ? { error: { code: e.code, message: e.message } } : { error: { code: 'internal_error', message: 'the upstream could not complete this request; see its log' } });
      }
    })();
  };
}

/**
 * The answer as the collector's long operations give it: `{"progress": ...}` lines while the
 * work runs, then `{"result": ...}` or `{"error": ...}`. The status goes with the first progress
 * line, so a refusal before any work keeps its own status and JSON body.
 */
function ndjson(res: ServerResponse) {
  let started = false;
  const line = (o: unknown) => {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(o) + '\n');
  };
  return {
    started: () => started,
    progress(p: ProgressEvent) {
      if (!started) {
        started = true;
        res.writeHead(200, { 'content-type': NDJSON, 'cache-control': 'no-store' });
      }
      line({ progress: p });
    },
    end(o: unknown) {
      line(o);
      res.end();
    },
  };
}
