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
