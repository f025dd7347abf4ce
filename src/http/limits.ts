import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Request-body bytes held across all connections at once. Each connection may hold up to
 * http.maxBodyBytes before its request is checked; 1,000 connections holding 1 MB each once
 * grew the server by 870 MB, never returned. Past the budget a body is refused (503), so a
 * flood of unfinished bodies costs the attacker connections, not the collector its memory.
 */
export class BodyBudget {
  private used = 0;
  constructor(readonly max: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.max) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get held(): number {
    return this.used;
  }
}

/**
 * At most `max` open connections from one address; more are closed at once. High enough by
 * default that many devices behind one NAT (or a load generator) are never refused.
 */
export function limitConnectionsPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? '';
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      socket.destroy();
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left) open.set(addr, left);
      else open.delete(addr);
    });
  });
}
