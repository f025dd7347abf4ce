import type { Transport } from './dispatcher.js';
import { TransportError } from './transport-error.js';

interface Coded extends Error {
  code?: string;
  host?: string;
  reason?: string;
  cert?: { subjectaltname?: string; subject?: { CN?: string } };
  presentedPin?: string;
}

/** The error that says what happened: undici wraps some (a proxy's TLS error), node aggregates others (one per address tried). */
function root(err: unknown): Coded {
  let e = err as Coded & { errors?: unknown[] };
  for (let i = 0; i < 5; i++) {
    if (!e.code && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0] as typeof e;
    else if ((e.code === undefined || e.code === 'UND_ERR_PRX_TLS') && e.cause instanceof Error) e = e.cause as typeof e;
    else break;
  }
  return e;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);
const NO_ROUTE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL', 'ENETDOWN']);
const CUT = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Maps what node and undici throw to a TransportError. `during` says how far the exchange got
 * ('request': no reply yet; 'reply': reading the body), for a cut's message. Errors that are not
 * about the network (a bug of ours) are returned as they are.
 */
export function classify(err: unknown, t: Transport, during: 'request' | 'reply'): unknown {
  if (err instanceof TransportError || !(err instanceof Error)) return err;
  const e = root(err);
  const code = e.code ?? '';
  const up = `the upstream at ${t.endpoint}`;
  const via = t.proxy ? ` through the proxy at ${t.proxy.endpoint}` : '';
  const tls = (message: string, extra = {}) => new TransportError('tls', message, false, { endpoint: t.endpoint, ...extra }, { cause: err });

  if (code === 'ERR_OUTPOST_PIN_MISMATCH') {
    return tls(
      `${up} presented a certificate whose key pin is ${e.presentedPin}, but exchange.connection.pinSha256 is ${t.pin}: the connection was refused. ` +
        `If the upstream's key was changed on purpose, check the new pin with its operator and update pinSha256; otherwise something is intercepting the connection`,
      { presentedPin: e.presentedPin, expectedPin: t.pin },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = e.cert?.subjectaltname || (e.cert?.subject?.CN ? `CN=${e.cert.subject.CN}` : 'other names');
    return tls(`${up} presented a certificate for ${names}, not for ${e.host ?? t.endpoint}: use a URL with one of the certificate's names, or have the upstream's certificate issued for the name the collector uses`);
  }
  if (UNTRUSTED.has(code)) {
    return tls(`${up} presented a certificate that no trusted certificate authority signed (${code}): set exchange.connection.caFile to the PEM bundle of the CA that issued it`);
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return tls(`${up} presented a certificate that is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'}: renew it, or check this machine's clock`);
  }
  if (/wrong version number|packet length too long|unknown protocol/i.test(e.message)) {
    return tls(`${up} does not speak TLS on that port${via}: check whether the URL should be http:// (loopback only) or names the upstream's HTTPS port`);
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return tls(`the TLS handshake with ${up} failed${via}: ${e.message}`);
  }

  if (NO_ROUTE.has(code)) {
    const what = code === 'ECONNREFUSED' ? 'nothing listens there (connection refused)' : code.startsWith('EAI') || code === 'ENOTFOUND' ? 'its name does not resolve' : `there is no route to it (${code})`;
    if (t.proxy) return new TransportError('proxy', `cannot reach the proxy at ${t.proxy.endpoint}: ${what}`, true, { endpoint: t.proxy.endpoint }, { cause: err });
    return new TransportError('unreachable', `cannot reach ${up}: ${what}`, true, { endpoint: t.endpoint }, { cause: err });
  }

  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') {
    const target = t.proxy ? `the proxy at ${t.proxy.endpoint} (or the tunnel through it to ${t.endpoint})` : up;
    return new TransportError('timeout', `connecting to ${target} took longer than ${t.timeouts.connectMs / 1000} s (exchange.connection.connectTimeoutSeconds)`, true, { phase: 'connect', endpoint: t.endpoint }, { cause: err });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new TransportError('timeout', `${up} did not answer within the headers timeout${via} (exchange.connection.headersTimeoutSeconds ${t.timeouts.headersMs / 1000} s, plus any long-poll wait)`, true, { phase: 'headers', endpoint: t.endpoint }, { cause: err });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new TransportError('timeout', `${up} stopped sending its reply for longer than ${t.timeouts.bodyMs / 1000} s (exchange.connection.bodyTimeoutSeconds)${via}`, true, { phase: 'body', endpoint: t.endpoint }, { cause: err });
  }

  const tunnel = /Proxy response \((\d+)\)/.exec(e.message);
  if (tunnel && t.proxy) {
    const status = Number(tunnel[1]);
    const p = `the proxy at ${t.proxy.endpoint}`;
    const details = { status, endpoint: t.proxy.endpoint };
    if (status === 407) {
      const msg = t.proxy.username
        ? `${p} refused the credentials of user ${t.proxy.username} (407 Proxy Authentication Required): check the user and the password in ${t.proxy.passwordFile}`
        : `${p} requires authentication (407 Proxy Authentication Required): set exchange.connection.proxyUsername and proxyPasswordFile`;
      return new TransportError('proxy', msg, false, details, { cause: err });
    }
    if (status >= 500) {
      return new TransportError('proxy', `${p} could not open a tunnel to ${t.endpoint} (it answered ${status}): the upstream may be down or unreachable from the proxy`, true, details, { cause: err });
    }
    return new TransportError('proxy', `${p} refused to open a tunnel to ${t.endpoint} (it answered ${status}): ask its administrator to allow CONNECT to that host and port`, false, details, { cause: err });
  }

  if (CUT.has(code) || /socket disconnected|other side closed|socket hang up/i.test(e.message)) {
    const when = during === 'reply' ? 'in the middle of its reply' : 'before a reply arrived';
    return new TransportError('cut', `the connection to ${up}${via} was closed ${when} (${code || e.message})`, true, { endpoint: t.endpoint }, { cause: err });
  }
  if (code.startsWith('HPE_') || e.name === 'HTTPParserError') {
    return new TransportError('not_outpost', `${up}${via} answered with something that is not HTTP (${e.message}): check that the URL names the Outpost upstream's port`, false, { endpoint: t.endpoint }, { cause: err });
  }
  return err;
}
