import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** A refusal the caller can act on keeps its status and code; anything else is ours (500), logged. */
export function sendFailure(res: ServerResponse, e: unknown, logger: Logger, req: IncomingMessage): void {
  if (e instanceof AppError) return sendError(res, e.status, e.code, e.message);
  logger.error('request failed', { method: req.method, url: req.url, error: (e as Error).message });
  sendError(res, 500, 'internal_error', 'the upstream could not complete this request; see its log');
}

/** A small JSON body (the admin socket's commands). */
export async function readJson(req: IncomingMessage, max = 1 << 20): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw new AppError(413, 'too_large', `the request body is larger than ${max} bytes`);
    parts.push(c);
  }
  if (!n) return {};
  try {
    const v = JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new AppError(400, 'malformed_json', `the request body is not a JSON object: ${(e as Error).message}`);
  }
}
