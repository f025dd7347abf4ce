import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ConnectProxy {
  port: number;
  /** http://127.0.0.1:<port>: what a collector's exchange.connection.proxyUrl names. */
  url: string;
  /** host:port of every tunnel it opened, in order. */
  readonly targets: string[];
  /** CONNECT requests it answered 407 (no or wrong credentials), and 403 (a target off this machine). */
  readonly refused: { auth: number; target: number };
  close(): Promise<void>;
}

const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** host:port → [host, port], with a bracketed IPv6 host kept whole. */
function split(target: string): [string, number] | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(target);
  return m ? [m[1]!, Number(m[2])] : null;
}

/**
 * An HTTP CONNECT proxy on 127.0.0.1 (node:http): tunnels to 127.0.0.1/localhost only (403
 * otherwise), answers anything but CONNECT with 405, and, given `auth`, requires Basic
 * Proxy-Authorization with that user and password (407 with Proxy-Authenticate otherwise).
 */
export async function startConnectProxy(opts: { auth?: { username: string; password: string } } = {}): Promise<ConnectProxy> {
  const targets: string[] = [];
  const refused = { auth: 0, target: 0 };
  const sockets = new Set<Socket>();
  const keep = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const expected = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : null;

  const server = createServer((_req, res) => {
    res.writeHead(405, { allow: 'CONNECT', connection: 'close' }).end('only CONNECT\n');
  });
  server.on('connection', keep);
  server.on('connect', (req, client: Socket, head: Buffer) => {
    keep(client);
    const answer = (status: string, extra = '') => client.end(`HTTP/1.1 ${status}\r\n${extra}content-length: 0\r\nconnection: close\r\n\r\n`);
    if (expected && req.headers['proxy-authorization'] !== expected) {
      refused.auth++;
      answer('407 Proxy Authentication Required', 'proxy-authenticate: Basic realm="outpost-test"\r\n');
      return;
    }
    const hp = split(req.url ?? '');
    if (!hp || !LOCAL.has(hp[0])) {
      refused.target++;
      answer('403 Forbidden');
      return;
    }
    const upstream = connect({ host: hp[0].replace(/^\[|\]$/g, ''), port: hp[1] });
    keep(upstream);
    let tunnelled = false;
    upstream.once('connect', () => {
      tunnelled = true;
      targets.push(req.url!);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('error', () => (tunnelled ? client.destroy() : answer('502 Bad Gateway')));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    targets,
    refused,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
