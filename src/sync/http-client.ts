import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { classify } from './classify.js';
import { buildTransport, type ConnectionConfig, type Transport } from './dispatcher.js';
import { BUNDLE_MEDIA_TYPE, HEADER, SYNC_BASE, SYNC_PROTOCOL, SYNC_VERSION, signRequest, type RequestSigner } from './protocol.js';
import { discard, MAX_JSON_BYTES, mediaType, readUpTo, unexpectedStatus, type ReplyHeaders } from './reply.js';
import { retryAfterSeconds, TransportError } from './transport-error.js';

/** A JSON answer the protocol knows: 2xx, or a 4xx with the `{"error":{code,message}}` body. */
export interface JsonReply {
  status: number;
  json: unknown;
  headers: ReplyHeaders;
  /** From Retry-After, when the answer carries one (a 202 does). */
  retryAfterSeconds?: number;
}

/** A signed GET's answer: a bundle written to `file` (200), or JSON (202, 4xx). */
export interface SignedReply extends JsonReply {
  /** Set on a 200 bundle: the path it was written to (the whole body, nothing more), and its size. */
  file?: string;
  bytes?: number;
}

export interface HelloReply {
  protocol: string;
  versions: number[];
  upstreamId: string;
  keyId: string;
  time: string;
}

type Body = Dispatcher.ResponseData['body'];

/**
 * The collector's side of the HTTP(S) connection to its upstream: TLS trust and pinning, the
 * proxy, the timeouts (all from exchange.connection), and the protocol's three kinds of request.
 * Every failure below the protocol is a TransportError; answers the protocol defines (2xx, 4xx
 * with a JSON error) are returned for the caller to read. Make one per configuration, close() it.
 */
export class UpstreamClient {
  private constructor(private readonly t: Transport) {}

  /** Throws TransportError `config` when the settings cannot work (no URL, unreadable CA file, exposed password file). */
  static fromConfig(connection: ConnectionConfig): UpstreamClient {
    return new UpstreamClient(buildTransport(connection));
  }

  /** host:port of the upstream, for messages. */
  get endpoint(): string {
    return this.t.endpoint;
  }

  /** GET /sync/v1/hello: who the upstream is. A 200 that is not an outpost-sync hello is `not_outpost`. */
  async hello(): Promise<HelloReply> {
    const r = await this.json('GET', `${SYNC_BASE}/hello`, {});
    const h = r.json as Partial<HelloReply> | null;
    // Hello is not signed: its fields go into lookups and messages only once they have the shapes the protocol gives them.
    const shaped = !!h && h.protocol === SYNC_PROTOCOL && Array.isArray(h.versions) && [h.upstreamId, h.keyId, h.time].every((v) => typeof v === 'string');
    if (r.status !== 200 || !shaped) {
      if (r.status >= 400) throw new TransportError('http', `the upstream at ${this.t.endpoint} answered ${r.status} to hello: ${JSON.stringify(r.json).slice(0, 300)}`, false, { status: r.status, endpoint: this.t.endpoint });
      throw new TransportError('not_outpost', `${this.t.endpoint} answered hello with JSON that is not an ${SYNC_PROTOCOL} greeting: check that the URL names an Outpost upstream`, false, { endpoint: this.t.endpoint });
    }
    return h as HelloReply;
  }

  /** POSTs a bundle file's exact bytes to `path` (e.g. /sync/v1/usage), streamed with its length. */
  async postBundle(path: string, file: string): Promise<JsonReply> {
    const { size } = await stat(file);
    return this.json('POST', path, {
      headers: { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': String(size) },
      body: () => createReadStream(file),
    });
  }

  /**
   * A GET signed by the collector's key (e.g. /sync/v1/usage/<id>/response). `wait` adds
   * ?wait=N (the long poll) and lengthens the headers timeout by as much. A 200 must be a
   * bundle: it is streamed to `toFile` (through `toFile`.part, renamed once whole), and
   * refused with `too_large` past `maxBytes`.
   */
  async getSigned(path: string, signer: RequestSigner, now: number, o: { toFile: string; maxBytes: number; wait?: number }): Promise<SignedReply> {
    const target = o.wait === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}wait=${o.wait}`;
    const signed = signRequest(signer, 'GET', this.t.basePath + target, now);
    const extra = (o.wait ?? 0) * 1000;
    const res = await this.send('GET', target, { headers: signed, headersTimeout: this.t.timeouts.headersMs + extra });
    if (res.statusCode === 200 && mediaType(res.headers) === BUNDLE_MEDIA_TYPE) {
      const bytes = await this.download(res.body, res.headers, o.toFile, o.maxBytes);
      return { status: 200, json: undefined, headers: res.headers, file: o.toFile, bytes };
    }
    if (res.statusCode === 200) {
      discard(res.body);
      throw new TransportError(
        'not_outpost',
        `the upstream at ${this.t.endpoint} answered 200 with ${String(res.headers['content-type'] ?? 'no content type')}, where an Outpost upstream sends a bundle (${BUNDLE_MEDIA_TYPE}): check that no proxy or portal answers in its place`,
        false,
        { status: 200, endpoint: this.t.endpoint },
      );
    }
    return this.readJson(res.statusCode, res.headers, res.body);
  }

  async close(): Promise<void> {
    await this.t.dispatcher.close();
  }

  private async json(method: 'GET' | 'POST', path: string, o: { headers?: Record<string, string>; body?: () => NodeJS.ReadableStream }): Promise<JsonReply> {
    const res = await this.send(method, path, o);
    return this.readJson(res.statusCode, res.headers, res.body);
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    o: { headers?: Record<string, string>; body?: () => NodeJS.ReadableStream; headersTimeout?: number },
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(this.t.origin + this.t.basePath + path, {
        dispatcher: this.t.dispatcher,
        method,
        headers: { [HEADER.version]: String(SYNC_VERSION), ...o.headers },
        ...(o.body ? { body: o.body() as never } : {}),
        ...(o.headersTimeout ? { headersTimeout: o.headersTimeout } : {}),
      });
    } catch (e) {
      throw classify(e, this.t, 'request');
    }
  }

  /** 5xx, 429 and anything not JSON are TransportErrors; the protocol's JSON answers are returned. */
  private async readJson(status: number, headers: ReplyHeaders, body: Body): Promise<JsonReply> {
    if (status >= 500 || status === 429 || status < 200 || (status >= 300 && status < 400)) {
      throw await unexpectedStatus(status, headers, body, this.t.endpoint);
    }
    if (mediaType(headers) !== 'application/json') {
      if (status >= 400) throw await unexpectedStatus(status, headers, body, this.t.endpoint);
      discard(body);
      throw new TransportError(
        'not_outpost',
        `the upstream at ${this.t.endpoint} answered ${status} with ${String(headers['content-type'] ?? 'no content type')}, where an Outpost upstream answers JSON or a bundle: check that the URL names the upstream, and that no proxy or portal answers in its place`,
        false,
        { status, endpoint: this.t.endpoint },
      );
    }
    let read: { bytes: Buffer; over: boolean };
    try {
      read = await readUpTo(body, MAX_JSON_BYTES, {
        ms: this.t.timeouts.bodyMs,
        error: () =>
          new TransportError('timeout', `the upstream at ${this.t.endpoint} did not finish its ${status} reply within ${this.t.timeouts.bodyMs / 1000} s (exchange.connection.bodyTimeoutSeconds): a JSON reply is small, and this one came a trickle at a time`, true, {
            status, endpoint: this.t.endpoint, phase: 'body',
          }),
      });
    } catch (e) {
      throw classify(e, this.t, 'reply');
    }
    if (read.over) throw new TransportError('too_large', `the upstream at ${this.t.endpoint} answered ${status} with more than ${MAX_JSON_BYTES} bytes of JSON: not an Outpost reply`, false, { status, endpoint: this.t.endpoint });
    let json: unknown;
    try {
      json = JSON.parse(read.bytes.toString('utf8'));
    } catch {
      throw new TransportError(status >= 400 ? 'http' : 'not_outpost', `the upstream at ${this.t.endpoint} answered ${status} with a body that is not valid JSON`, false, { status, endpoint: this.t.endpoint });
    }
    const retryAfter = retryAfterSeconds(headers['retry-after']);
    return { status, json, headers, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) };
  }

  /** Streams a bundle body to `file` through `file`.part; refused past `maxBytes`, and nothing is left on any failure. */
  private async download(body: Body, headers: ReplyHeaders, file: string, maxBytes: number): Promise<number> {
    const tooLarge = (n: string) =>
      new TransportError('too_large', `the upstream at ${this.t.endpoint} sent a bundle of ${n} bytes, more than the ${maxBytes} this collector accepts: it was cut and not kept`, false, { status: 200, endpoint: this.t.endpoint });
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(body);
      throw tooLarge(String(declared));
    }
    let n = 0;
    const bound = new Transform({
      transform(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done(n > maxBytes ? tooLarge(`more than ${maxBytes}`) : null, chunk);
      },
    });
    const part = `${file}.part`;
    try {
      await pipeline(body, bound, createWriteStream(part));
      await rename(part, file);
    } catch (e) {
      await unlink(part).catch(() => undefined);
      throw classify(e, this.t, 'reply');
    }
    return n;
  }
}
