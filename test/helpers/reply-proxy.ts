import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the proxy sends in place of an upstream's bundle answer. */
export interface ReplacedReply {
  body: Buffer;
  /** Extra or replaced headers (content-length always follows `body`). */
  headers?: Record<string, string>;
}

/**
 * Decides the answer to a GET of …/usage/<id>/response that the upstream answered 200 with a
 * bundle: undefined relays the upstream's bytes as they are.
 */
export type ReplyHook = (upstreamBody: Buffer, bundleId: string) => ReplacedReply | undefined;

export interface ReplyProxy {
  port: number;
  url: string;
  /** Applies to every bundle answer until set back to null. */
  hook: ReplyHook | null;
  /** Every bundle answer the upstream sent through this proxy, oldest first, as it sent it. */
  readonly answers: { bundleId: string; body: Buffer }[];
  close(): Promise<void>;
}

/** Hop-by-hop headers belong to one connection, not to the message relayed. */
const hopless = (h: http.IncomingHttpHeaders) => {
  const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, ...rest } = h;
  return rest;
};

const RESPONSE = /\/usage\/(bun_[0-9a-z]+)\/response(?:\?|$)/;

/**
 * An HTTP forwarder on 127.0.0.1 in front of an upstream, which can replace the bundle it sends
 * back for a part: a reply signed by another key, an older reply replayed, a truncated one. A
 * connection the upstream refuses or drops is reset towards the client, as a TCP relay would.
 */
export async function startReplyProxy(targetPort: number): Promise<ReplyProxy> {
  const answers: { bundleId: string; body: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const proxy: ReplyProxy = { port: 0, url: '', hook: null, answers, close: () => Promise.resolve() };

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const reset = () => (req.socket.destroyed ? undefined : req.socket.resetAndDestroy());
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: hopless(req.headers), agent: false }, (ur) => {
      const match = RESPONSE.exec(req.url ?? '');
      if (!(req.method === 'GET' && match && ur.statusCode === 200)) {
        res.writeHead(ur.statusCode ?? 502, hopless(ur.headers));
        ur.pipe(res);
        ur.on('error', reset);
        return;
      }
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('error', reset);
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        answers.push({ bundleId: match[1]!, body });
        const replaced = proxy.hook?.(body, match[1]!);
        const out = replaced?.body ?? body;
        res.writeHead(200, { ...hopless(ur.headers), ...replaced?.headers, 'content-length': String(out.length) });
        res.end(out);
      });
    });
    up.on('error', reset);
    req.pipe(up);
    req.on('error', () => up.destroy());
  };

  const server = http.createServer({ keepAliveTimeout: 65_000 }, forward);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  proxy.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
