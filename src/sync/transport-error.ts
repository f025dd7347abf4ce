/**
 * Everything that can go wrong between the collector and its upstream, below the protocol: one
 * class, a stable `code` the sync service and the status page branch on, a message an operator
 * can act on, and whether trying again later may help.
 *
 *   config       the connection settings cannot work (a CA file with no certificate, a proxy
 *                password file others may read): fix the configuration; never retried
 *   unreachable  nothing answered at host:port (refused, name unknown, no route)
 *   timeout      a phase took longer than its configured timeout (`phase` names it)
 *   tls          the upstream's certificate is not trusted, is for another name, or does not match the pin
 *   proxy        the proxy is down, or refused the tunnel (407 authentication, 403 policy, 5xx)
 *   cut          the connection closed or was reset mid-request or mid-response
 *   http         a status the protocol does not answer with (5xx, 429, a proxy's HTML page)
 *   not_outpost  a success status whose body is not what an Outpost upstream sends
 *   too_large    a reply longer than the caller's bound: cut, nothing kept
 */
export type TransportErrorCode = 'config' | 'unreachable' | 'timeout' | 'tls' | 'proxy' | 'cut' | 'http' | 'not_outpost' | 'too_large';

export interface TransportErrorDetails {
  /** The HTTP status, for `http`, and for `proxy` when the proxy answered the tunnel request. */
  status?: number;
  /** From a Retry-After header (seconds or an HTTP date), when the answer carried one. */
  retryAfterSeconds?: number;
  /** For `timeout`: which wait ran out. */
  phase?: 'connect' | 'headers' | 'body';
  /** For a pin mismatch: the pin of the key the server presented, and the one configured. */
  presentedPin?: string;
  expectedPin?: string;
  /** The host:port the error is about (the upstream's, or the proxy's). */
  endpoint?: string;
}

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    readonly retryable: boolean,
    readonly details: TransportErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Retry-After as seconds from now: a number of seconds, or an HTTP date. */
export function retryAfterSeconds(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}
