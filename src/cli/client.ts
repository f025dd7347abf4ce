import { userInfo } from 'node:os';
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { socketFile } from '../compose/data-files.js';
import { createInterface } from 'node:readline';
import { NDJSON } from '../http/ndjson.js';
import type { OnProgress, ProgressEvent } from '../shared/progress.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface ApiResponse {
  status: number;
  body: unknown;
  /** A streamed answer whose final line was an error (its status, 200, was sent before the failure). */
  failed?: boolean;
}

export interface ApiOptions {
  text?: boolean;
  /** Asks for the answer as an NDJSON stream (on routes that offer it) and is told each progress line. */
  onProgress?: OnProgress;
}

export type Api = (method: string, path: string, body?: unknown, opts?: ApiOptions) => Promise<unknown>;

function request(socketPath: string, method: string, path: string, body?: unknown, text = false, onProgress?: OnProgress): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    // A Buffer goes as it is: a file's bytes are never decoded and encoded again on the way.
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : text ? String(body) : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path,
        headers: {
          host: 'localhost',
          // Who runs the command, as this process sees it: recorded with what it does, marked self-reported.
          'x-outpost-os-user': osUser(),
          ...(onProgress ? { accept: `${NDJSON}, application/json` } : {}),
          ...(payload !== undefined
            ? { 'content-type': text ? 'application/xml' : 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        if (onProgress && String(res.headers['content-type'] ?? '').startsWith(NDJSON)) return readNdjson(res, onProgress).then(resolve, reject);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = raw;
          try {
            parsed = raw ? JSON.parse(raw) : null;
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/**
 * Reads a streamed answer: progress lines to `onProgress` as they arrive, then the final line,
 * the result or the error. A stream that ends without one (the collector stopped mid-way) is
 * an error that says so.
 */
async function readNdjson(res: http.IncomingMessage, onProgress: OnProgress): Promise<ApiResponse> {
  let final: { result?: unknown; error?: unknown } | null = null;
  for await (const line of createInterface({ input: res, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    let o: { progress?: ProgressEvent; result?: unknown; error?: unknown };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      throw new CliError(`the collector's streamed answer holds a line that is not JSON: ${line.slice(0, 200)}`);
    }
    if (o.progress) onProgress(o.progress);
    else final = o;
  }
  if (!final) throw new CliError('the collector\'s answer ended before the operation did (was the collector stopped?): check its log and the state with a status command', 1);
  return 'error' in final ? { status: 200, body: final, failed: true } : { status: res.statusCode ?? 200, body: final.result };
}

/** The error codes of a connection that found nothing listening, or no such host. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/** The refusal for a collector that does not answer over HTTP, saying how to start one; null for other errors. */
export function collectorUnreachable(err: unknown, url: string): CliError | null {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = String(e?.code ?? e?.cause?.code ?? '');
  if (!UNREACHABLE.has(code)) return null;
  return new CliError(
    `no collector answers at ${url} (${code}): start one with \`npm start\` (or \`outpost serve\`) in the project folder, ` +
      'or give --url of one that runs (collector_not_running)',
  );
}

/** Resolves once something answers HTTP at url (any status); rejects with what the connection met. */
export function probe(url: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve();
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer from ${url} in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}

function canConnect(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return request(socketPath, 'GET', '/healthz').then(
    (r) => r.status === 200,
    () => false,
  );
}

/**
 * Runs a CLI command against the operator API. With a server running, through its local
 * socket (one process owns the database); with none, the CLI opens the store itself, under
 * the store's exclusive lock, and serves the same API to itself on a private socket.
 */
export async function withApi<T>(config: Config, fn: (api: Api, via: 'server' | 'local') => Promise<T>): Promise<T> {
  const serverSocket = socketFile(config);
  const call =
    (socketPath: string): Api =>
    async (method, path, body, opts) => {
      const r = await request(socketPath, method, '/api/v1' + path, body, opts?.text ?? false, opts?.onProgress);
      if (r.status >= 400 || r.failed) {
        const err = (r.body as { error?: { message?: string; code?: string } })?.error;
        throw new CliError(err?.message ? `${err.message} (${err.code})` : `HTTP ${r.status}`, 1, r.body);
      }
      return r.body;
    };
  if (await canConnect(serverSocket)) return fn(call(serverSocket), 'server');

  // Loaded here, not on import: a command that talks to a running collector needs none of the
  // collector's own modules, and loading them all took most of a command's start-up time.
  const [{ buildServices }, { VERSION }, { createOperatorApp }, { createLogger }, { StoreLockedError }, { close, listen }] = await Promise.all([
    import('../compose/build-services.js'), import('../compose/version.js'), import('../http/operator-app.js'),
    import('../shared/logger.js'), import('../store/open.js'), import('../http/server.js'),
  ]);
  let services;
  try {
    services = buildServices(config, { logger: createLogger('error', true) });
  } catch (e) {
    if (e instanceof StoreLockedError) {
      throw new CliError(`${e.message}, and its socket ${serverSocket} does not answer`);
    }
    throw e;
  }
  const dir = mkdtempSync(join(tmpdir(), 'outpost-cli-'));
  const path = join(dir, 'api.sock');
  const server = http.createServer(createOperatorApp(services, { transport: 'socket', version: VERSION }));
  try {
    await listen(server, path);
    return await fn(call(path), 'local');
  } finally {
    await close(server);
    await services.ingest.drain();
    services.refusals.flush();
    services.db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
