import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../shared/logger.js';
import { ADMIN_ROUTES, type OperationName, type Operations } from './operations.js';
import { readJson, sendError, sendFailure, sendJson } from './respond.js';
import type { Serial } from './serial.js';

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
    void (async () => {
      try {
        const args = await readJson(req);
        const call = () => (ops[name] as (a: unknown) => Promise<unknown>)(args);
        sendJson(res, 200, await (route.writes ? serial.run(call) : call()));
      } catch (e) {
        sendFailure(res, e, logger, req);
      }
    })();
  };
}
