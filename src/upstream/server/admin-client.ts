import http from 'node:http';
import { existsSync } from 'node:fs';
import { ADMIN_ROUTES, type OperationName, type Operations } from './operations.js';

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath, method, path, headers: { host: 'localhost', ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : null });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: raw });
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** True when a running upstream answers on its socket. */
export async function adminAnswers(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return false;
  return call(socketPath, 'GET', '/admin/v1/healthz').then(
    (r) => r.status === 200,
    () => false,
  );
}

/** Asks the running upstream to run one operation; its refusal comes back as an AdminError with its code. */
export async function adminCall<K extends OperationName>(socketPath: string, name: K, args: Parameters<Operations[K]>[0]): Promise<Awaited<ReturnType<Operations[K]>>> {
  const route = ADMIN_ROUTES[name];
  const r = await call(socketPath, route.method, route.path, route.method === 'POST' ? args : undefined);
  if (r.status !== 200) {
    const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new AdminError(r.status, e?.code ?? 'error', e?.message ?? `HTTP ${r.status}`);
  }
  return r.body as Awaited<ReturnType<Operations[K]>>;
}
