import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * What the proxy does with a new connection:
 *   pass          relays both ways
 *   refuse        resets the connection at once (RST), nothing relayed
 *   cutRequest    relays `afterBytes` bytes from the client, then drops both sides
 *   cutResponse   relays `afterBytes` bytes from the target, then drops both sides
 *   delay         holds every chunk from the target `ms` before relaying it
 *   canned        answers `response` (raw bytes: status line, headers, body) to the first bytes
 *                 from the client, then closes, never contacting the target. Plain HTTP only:
 *                 a TLS client would read it as a broken handshake.
 */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'refuse' }
  | { kind: 'cutRequest'; afterBytes: number }
  | { kind: 'cutResponse'; afterBytes: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'canned'; response: string | Buffer };

export interface FaultProxyStats {
  /** Connections accepted, in any mode. */
  connections: number;
  /** Bytes relayed client → target, and target → client (canned bytes count as down). */
  bytesUp: number;
  bytesDown: number;
}

export interface FaultProxy {
  port: number;
  /** http://127.0.0.1:<port>: point a plain-HTTP client here (an https client uses https://127.0.0.1:<port>). */
  url: string;
  /** Applies to each NEW connection (a kept-alive one keeps its mode: see dropConnections). `once`: the next connection only, then pass. */
  setMode(mode: FaultMode, opts?: { once?: boolean }): void;
  readonly mode: FaultMode;
  readonly stats: FaultProxyStats;
  /** Destroys every open connection (a kept-alive one included), so that the next request gets the current mode. */
  dropConnections(): void;
  close(): Promise<void>;
}

/** A raw HTTP response for `canned`, with Content-Length and Connection: close. */
export function rawResponse(status: number, reason: string, body = '', headers: Record<string, string> = {}): string {
  const h = { 'content-type': 'text/plain', ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  return `HTTP/1.1 ${status} ${reason}\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}

/** Canned answers the sync tests need. */
export const CANNED = {
  serverError: rawResponse(500, 'Internal Server Error', '{"error":{"code":"internal","message":"boom"}}', { 'content-type': 'application/json' }),
  unavailable: (retryAfterSeconds = 1) => rawResponse(503, 'Service Unavailable', 'try later', { 'retry-after': String(retryAfterSeconds) }),
  htmlBadGateway: rawResponse(502, 'Bad Gateway', '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>proxy error</p></body></html>', { 'content-type': 'text/html' }),
  htmlOk: rawResponse(200, 'OK', '<html><head><title>Login required</title></head><body>portal</body></html>', { 'content-type': 'text/html' }),
};

/**
 * A TCP proxy on 127.0.0.1 in front of target (host:port), to inject network faults between a
 * collector and its upstream. Modes: see FaultMode. Starts in `pass`. `listenPort` (default: a
 * free one) lets a test close the proxy and open it again where the collector points.
 */
export async function startFaultProxy(targetPort: number, targetHost = '127.0.0.1', listenPort = 0): Promise<FaultProxy> {
  let mode: FaultMode = { kind: 'pass' };
  let once = false;
  const stats: FaultProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0 };
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
  };

  const server = createServer((client) => {
    stats.connections++;
    track(client);
    const m = mode;
    if (once) {
      mode = { kind: 'pass' };
      once = false;
    }
    if (m.kind === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (m.kind === 'canned') {
      client.once('data', () => {
        const bytes = Buffer.from(m.response);
        stats.bytesDown += bytes.length;
        client.end(bytes);
      });
      client.resume(); // the rest of the request is read and dropped
      return;
    }
    const target = connect({ host: targetHost, port: targetPort });
    track(target);
    const dropBoth = () => {
      client.destroy();
      target.destroy();
    };
    target.on('error', () => client.resetAndDestroy());
    client.on('error', () => target.destroy());
    client.on('close', () => target.destroy());
    // A delayed response must not lose its end: the target's close is relayed after its last chunk.
    target.on('close', () => (m.kind === 'delay' ? setTimeout(() => client.end(), m.ms + 1) : client.end()));

    let up = 0;
    client.on('data', (chunk: Buffer) => {
      if (m.kind === 'cutRequest' && up + chunk.length >= m.afterBytes) {
        const part = chunk.subarray(0, m.afterBytes - up);
        up += part.length;
        stats.bytesUp += part.length;
        target.write(part, dropBoth);
        client.pause();
        return;
      }
      up += chunk.length;
      stats.bytesUp += chunk.length;
      target.write(chunk);
    });

    let down = 0;
    target.on('data', (chunk: Buffer) => {
      if (m.kind === 'cutResponse' && down + chunk.length >= m.afterBytes) {
        const part = chunk.subarray(0, m.afterBytes - down);
        down += part.length;
        stats.bytesDown += part.length;
        client.write(part, dropBoth);
        target.pause();
        return;
      }
      down += chunk.length;
      const relay = () => {
        if (client.destroyed) return;
        stats.bytesDown += chunk.length;
        client.write(chunk);
      };
      if (m.kind === 'delay') setTimeout(relay, m.ms);
      else relay();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    setMode(next, opts = {}) {
      mode = next;
      once = Boolean(opts.once);
    },
    get mode() {
      return mode;
    },
    stats,
    dropConnections() {
      for (const s of open) s.destroy();
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
