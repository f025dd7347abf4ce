import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { backoffMs } from '../sync/backoff.js';
import { sleep } from '../sync/failure.js';
import { printable, readUpTo } from '../sync/reply.js';
import { retryAfterSeconds, TransportError } from '../sync/transport-error.js';
import type { Logger } from '../shared/logger.js';

export interface CssmClientOptions {
  tokenUrl: string;
  apiUrl: string;
  clientId: string;
  /** Read when a token is needed, never kept in a field that could be logged. */
  clientSecret: () => string;
  /** The PEM text of cisco.cloud.caFile, trusted besides the system's roots. */
  ca?: string | undefined;
  timeoutMs: number;
  /** Attempts for a request that may pass (429, 5xx, the network), with backoff or Retry-After. */
  attempts: number;
  baseSeconds: number;
  maxSeconds: number;
  signal: AbortSignal;
  logger: Logger;
}

/** An answer of CSSM that refuses what was asked: its status and its own words. */
export class CssmError extends Error {
  override readonly name = 'CssmError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * Cisco Smart Software Manager's public REST API: OAuth 2.0 client credentials, a Bearer token
 * on every call (fetched again once when an answer says it is no longer good), 429 waiting as
 * long as Retry-After says, 5xx and network failures retried with backoff. Every URL comes from
 * the configuration; the secret is read when a token is fetched and is never part of a message.
 */
export class CssmClient {
  private token: { value: string; expiresAt: number } | null = null;
  private dispatcher: Dispatcher;

  constructor(private o: CssmClientOptions) {
    this.dispatcher = new Agent({
      connect: { ...(o.ca ? { ca: [...tls.rootCertificates, o.ca] } : {}), timeout: o.timeoutMs },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
  }

  static caFrom(file: string): string | undefined {
    return file ? readFileSync(file, 'utf8') : undefined;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** GET or POST a JSON call under the API's base URL; the parsed answer. */
  async call(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    let reauthed = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const token = await this.bearer();
        return await this.once(method, `${this.o.apiUrl.replace(/\/$/, '')}${path}`, body, { ...headers, authorization: `Bearer ${token}` });
      } catch (e) {
        if (e instanceof CssmError && e.status === 401 && !reauthed) {
          // A token CSSM no longer takes (expired early, revoked): one new token, then the same call.
          reauthed = true;
          this.token = null;
          attempt--;
          continue;
        }
        const retryable = (e instanceof CssmError || e instanceof TransportError) && e.retryable;
        if (!retryable || attempt >= this.o.attempts || this.o.signal.aborted) throw e;
        const after = e instanceof TransportError ? e.details.retryAfterSeconds : undefined;
        const wait = after !== undefined ? Math.min(after, this.o.maxSeconds) * 1000 : backoffMs(attempt, this.o.baseSeconds, this.o.maxSeconds);
        this.o.logger.info('Cisco cloud call failed; trying again', { path, attempt, waitMs: wait, error: e.message });
        await sleep(wait, this.o.signal);
      }
    }
  }

  private async bearer(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 30_000) return this.token.value;
    const form = new URLSearchParams({ client_id: this.o.clientId, client_secret: this.o.clientSecret(), grant_type: 'client_credentials' }).toString();
    const r = (await this.once('POST', this.o.tokenUrl, form, { 'content-type': 'application/x-www-form-urlencoded' }, 'token')) as {
      access_token?: unknown; expires_in?: unknown;
    };
    if (typeof r.access_token !== 'string' || !r.access_token) throw new CssmError(502, 'bad_token', `the token endpoint ${this.o.tokenUrl} answered without an access_token`);
    const ttl = typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : 3600;
    this.token = { value: r.access_token, expiresAt: Date.now() + ttl * 1000 };
    return this.token.value;
  }

  private async once(method: string, url: string, body: unknown, headers: Record<string, string>, what = 'call'): Promise<unknown> {
    const endpoint = new URL(url).host;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        dispatcher: this.dispatcher,
        headers: { accept: 'application/json', ...(typeof body === 'string' ? {} : body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
        signal: this.o.signal,
      });
    } catch (e) {
      throw networkError(e, endpoint);
    }
    let bytes: Buffer;
    try {
      const read = await readUpTo(res.body, MAX_REPLY_BYTES);
      if (read.over) throw new TransportError('too_large', `the Cisco cloud at ${endpoint} answered with more than ${MAX_REPLY_BYTES} bytes`, false, { endpoint });
      bytes = read.bytes;
    } catch (e) {
      throw e instanceof TransportError ? e : networkError(e, endpoint);
    }
    let json: unknown;
    try {
      json = bytes.length ? JSON.parse(bytes.toString('utf8')) : {};
    } catch {
      json = undefined;
    }
    const s = res.statusCode;
    if (s >= 200 && s < 300) {
      if (json === undefined) throw new TransportError('not_outpost', `the Cisco cloud at ${endpoint} answered ${s} with a body that is not JSON: "${printable(bytes.toString('utf8')).slice(0, 120)}"`, false, { endpoint });
      return json;
    }
    const said = describe(json, bytes);
    if (s === 429 || s >= 500 || s === 408) {
      const after = retryAfterSeconds(res.headers['retry-after']);
      throw new TransportError('http', `the Cisco cloud at ${endpoint} answered ${s}${said ? `: ${said}` : ''}${after !== undefined ? ` (retry after ${after} s)` : ''}`, true, {
        status: s, endpoint, ...(after !== undefined ? { retryAfterSeconds: after } : {}),
      });
    }
    if (what === 'token') {
      throw new CssmError(s, 'token_refused', `the token endpoint ${this.o.tokenUrl} refused client ${this.o.clientId} (${s}${said ? `: ${said}` : ''}): check cisco.cloud.clientId and the client secret (outpost cisco cloud credentials)`);
    }
    throw new CssmError(s, `http_${s}`, `the Cisco cloud answered ${method} ${new URL(url).pathname} with ${s}${said ? `: ${said}` : ''}`);
  }
}

/** CSSM's own words from an error answer, whatever its shape (OAuth, API gateway or API), short and printable. */
function describe(json: unknown, bytes: Buffer): string {
  const j = (json ?? {}) as Record<string, unknown>;
  const parts = [j.error_description, j.message, j.statusMessage, j.error, j.status, j.code]
    .map((v) => (typeof v === 'string' ? v : typeof v === 'object' && v && typeof (v as { message?: unknown }).message === 'string' ? (v as { message: string }).message : undefined))
    .filter((v): v is string => !!v);
  const text = parts.length ? parts.join(' — ') : json === undefined ? bytes.toString('utf8') : '';
  return printable(text).slice(0, 300);
}

function networkError(e: unknown, endpoint: string): Error {
  if (e instanceof TransportError || e instanceof CssmError) return e;
  const err = e as Error & { code?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code ?? '';
  if (err.name === 'AbortError') return new TransportError('cut', `the call to the Cisco cloud at ${endpoint} was stopped (the collector is stopping)`, false, { endpoint });
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(code)) {
    return new TransportError('tls', `the Cisco cloud at ${endpoint} presented a certificate this collector does not trust (${code}): set cisco.cloud.caFile if a proxy re-signs it`, false, { endpoint });
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
    return new TransportError('timeout', `the Cisco cloud at ${endpoint} did not answer within cisco.cloud.timeoutSeconds`, true, { endpoint });
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
    return new TransportError('unreachable', `cannot reach the Cisco cloud at ${endpoint} (${code})`, true, { endpoint });
  }
  return new TransportError('cut', `the connection to the Cisco cloud at ${endpoint} failed: ${printable(err.message)}`, true, { endpoint });
}
