import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type express from 'express';

/**
 * One listener, two handlers: device requests go to the lean node:http handler, everything
 * else to the express operator app.
 */
export function combinedHandler(
  device: (req: IncomingMessage, res: ServerResponse) => void,
  operator: express.Express,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.url?.startsWith('/device/')) device(req, res);
    else operator(req, res);
  };
}

export function listen(server: http.Server, port: number | string, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof port === 'string') server.listen(port, done);
    else server.listen(port, host, done);
  });
}

export function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/**
 * Stops a server the way a restart wants it stopped, in one step a caller can bound: no new
 * connections from the moment it is called, idle keep-alive connections closed at once, and
 * every busy one answered with `Connection: close` and closed as its response ends. Whatever
 * is still open when the grace period ends (a client that never sends the rest of its body,
 * a long export) is cut. Resolves once every connection is gone, with the number of requests
 * that were cut. Returns the function that starts it: it must be made before the server
 * accepts anything, so that it sees every request.
 */
export function drainable(server: http.Server): (graceMs: number) => Promise<number> {
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  // A response that ends while closing would otherwise leave its connection idle and open,
  // waiting for a keep-alive timeout of a minute: close it as soon as it is idle.
  const closeWhenIdle = () => setImmediate(() => server.closeIdleConnections());
  const lastOne = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.once('finish', closeWhenIdle);
  };
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (closing) lastOne(res);
  });
  let drained: Promise<number> | undefined;
  return (graceMs) =>
    (drained ??= new Promise<number>((resolve) => {
      closing = true;
      let cut = 0;
      const timer = setTimeout(() => {
        cut = inFlight.size;
        server.closeAllConnections();
      }, graceMs);
      server.close(() => {
        clearTimeout(timer);
        resolve(cut);
      });
      for (const res of inFlight) lastOne(res);
      server.closeIdleConnections();
    }));
}

/**
 * Requests node's parser refuses before any handler sees them (headers or a URL too large, a
 * malformed request line) are answered with the JSON error body every other refusal has,
 * rather than node's bare status line; the connection is then closed.
 */
export function answerClientErrors(server: http.Server): void {
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : err.code === 'HPE_TIMEOUT' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = tooLarge ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'malformed_request';
    const message = tooLarge
      ? 'the request line and headers exceed what the collector reads (16 KB): shorten the URL or the headers'
      : status === 408
        ? 'the request did not arrive in time'
        : 'the request is not well-formed HTTP';
    const body = JSON.stringify({ error: { code, message, details: {} } });
    const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status];
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}

