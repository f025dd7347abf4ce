/**
 * What the sync needs from a connection to an Outpost upstream. The undici client implements
 * it; the sync service knows nothing of sockets, TLS or proxies. Failures below the protocol,
 * and answers that may pass (5xx, 429), are thrown as TransportFailures (retryable or not);
 * the protocol's own answers (2xx, 4xx) are returned.
 */
export interface SyncTransport {
  /** Who the upstream is, which protocol versions it reads, and its clock. */
  hello(): Promise<{ versions: number[]; upstreamId: string; keyId: string; time: string }>;
  /** Posts a bundle file's exact bytes to a /sync/v1 path; returns the status and its JSON body. */
  postBundle(path: string, file: string): Promise<{ status: number; json: unknown }>;
  /**
   * A signed GET of a /sync/v1 path, waiting up to `wait` seconds at the upstream (a long poll).
   * A 200 bundle is streamed to `toFile` (at most `maxBytes`); any other answer comes back as JSON.
   */
  fetchBundle(path: string, o: { wait: number; toFile: string; maxBytes: number }): Promise<{ status: number; json?: unknown; file?: string; retryAfterSeconds?: number }>;
  close(): Promise<void>;
}

/** A transport failure: a stable code, words an operator can act on, and whether trying again may help. */
export interface TransportFailure {
  code: string;
  message: string;
  retryable: boolean;
}

export const isTransportFailure = (e: unknown): e is Error & TransportFailure =>
  e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { retryable?: unknown }).retryable === 'boolean';
