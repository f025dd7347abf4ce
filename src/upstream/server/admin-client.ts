import http from 'node:http';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ADMIN_ROUTES, type OperationName, type Operations } from './operations.js';
import { NDJSON } from '../../http/ndjson.js';
import type { OnProgress, ProgressEvent } from '../../shared/progress.js';

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function call(socketPath: string, method: string, path: string, body?: unknown, onProgress?: OnProgress): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath, method, path,
        headers: {
          host: 'localhost',
          ...(onProgress ? { accept: `${NDJSON}, application/json` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        if (onProgress && String(res.headers['content-type'] ?? '').startsWith(NDJSON)) return readNdjson(res, onProgress).then(resolve, reject);
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

/**
 * A streamed answer: progress lines to `onProgress` as they come, then the result or the error,
 * which comes back as the failure it would have been without the stream.
 */
async function readNdjson(res: http.IncomingMessage, onProgress: OnProgress): Promise<{ status: number; body: unknown }> {
  let final: { result?: unknown; error?: { code?: string; message?: string } } | null = null;
  for await (const line of createInterface({ input: res, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    let o: { progress?: ProgressEvent; result?: unknown; error?: { code?: string; message?: string } };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      throw new AdminError(502, 'bad_stream', `the upstream's streamed answer holds a line that is not JSON: ${line.slice(0, 200)}`);
    }
    if (o.progress) onProgress(o.progress);
    else final = o;
  }
  if (!final) throw new AdminError(502, 'stream_ended', "the upstream's answer ended before the operation did (was the upstream stopped?): check its log and `outpost upstream status`");
  return 'error' in final ? { status: 500, body: final } : { status: 200, body: final.result };
}

/** True when a running upstream answers on its socket. */
export async function adminAnswers(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return false;
  return call(socketPath, 'GET', '/admin/v1/healthz').then(
    (r) => r.status === 200,
    () => false,
  );
}

/**
 * Asks the running upstream to run one operation; its refusal comes back as an AdminError with
 * its code. With `onProgress`, a route that streams its progress tells it each step.
 */
export async function adminCall<K extends OperationName>(
  socketPath: string,
  name: K,
  args: Parameters<Operations[K]>[0],
  onProgress?: OnProgress,
): Promise<Awaited<ReturnType<Operations[K]>>> {
  const route = ADMIN_ROUTES[name];
  const r = await call(socketPath, route.method, route.path, route.method === 'POST' ? args : undefined, route.progress ? onProgress : undefined);
  if (r.status !== 200) {
    const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new AdminError(r.status, e?.code ?? 'error', e?.message ?? `HTTP ${r.status}`);
  }
  return r.body as Awaited<ReturnType<Operations[K]>>;
}
