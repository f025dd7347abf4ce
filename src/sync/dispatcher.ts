import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls, { type PeerCertificate } from 'node:tls';
import { Agent, Pool, ProxyAgent, type Dispatcher } from 'undici';
import type { Config } from '../config/schema.js';
import { readSecretFile } from '../shared/secret-file.js';
import { TransportError } from './transport-error.js';

export type ConnectionConfig = Config['exchange']['connection'];

/** Where one request goes and through what: built once from the configuration, reused by every request. */
export interface Transport {
  /** The upstream's origin (scheme, host, port) and the path prefix of its URL ('' for none). */
  origin: string;
  basePath: string;
  /** host:port of the upstream, for messages. */
  endpoint: string;
  dispatcher: Dispatcher;
  proxy?: { endpoint: string; username: string; passwordFile: string };
  pin?: string;
  timeouts: { connectMs: number; headersMs: number; bodyMs: number };
}

/**
 * The pin of a certificate's public key, in curl's --pinnedpubkey form: sha256// and the base64
 * SHA-256 of the SubjectPublicKeyInfo DER. An operator computes the same from the upstream's
 * certificate file with
 *
 *   openssl x509 -in upstream.pem -noout -pubkey | openssl pkey -pubin -outform DER \
 *     | openssl dgst -sha256 -binary | openssl base64
 *
 * or from the running upstream with `openssl s_client -connect host:8183 </dev/null 2>/dev/null
 * | openssl x509 -noout -pubkey | ...` (the same pipeline). It pins the key, not the certificate,
 * so a certificate renewed on the same key keeps its pin.
 */
export const spkiPin = (spkiDer: Buffer): string => `sha256//${createHash('sha256').update(spkiDer).digest('base64')}`;

const config = (message: string) => new TransportError('config', message, false);

/** The CA certificates to trust: caFile's, plus node's bundled roots when systemCa. Undefined: node's default. */
function trustedCas(c: ConnectionConfig): string[] | undefined {
  if (c.caFile === '') {
    if (!c.systemCa) throw config('exchange.connection.systemCa is false and no caFile is set: no certificate authority would be trusted; set caFile to the PEM bundle of the CA that signed the upstream\'s certificate');
    return undefined;
  }
  let pem: string;
  try {
    pem = readFileSync(c.caFile, 'utf8');
  } catch (e) {
    throw config(`cannot read the CA bundle exchange.connection.caFile ${c.caFile}: ${(e as Error).message}`);
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw config(`the CA bundle ${c.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch {
      throw config(`certificate ${i + 1} in the CA bundle ${c.caFile} cannot be read as X.509`);
    }
  });
  return c.systemCa ? [...tls.rootCertificates, ...blocks] : blocks;
}

/**
 * The proxy password, from a file only its owner may read: a password that the group or others
 * may read is refused, as ssh refuses such a private key, rather than used and thereby
 * blessed. A trailing line break (echo > file) is not part of it.
 */
export function readPasswordFile(path: string): string {
  try {
    return readSecretFile(path, 'proxy password file');
  } catch (e) {
    throw config((e as Error).message);
  }
}

/** Node's host name check, then the pin: a key that does not match is refused even under a trusted CA. */
function checkIdentity(pin: string | undefined) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const err = tls.checkServerIdentity(host, cert);
    if (err || !pin) return err;
    // PeerCertificate.pubkey is the bare key (an EC point), not the SubjectPublicKeyInfo a pin covers.
    const presented = spkiPin(new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' }));
    if (presented === pin) return undefined;
    return Object.assign(new Error(`the upstream's certificate key does not match the pin`), {
      code: 'ERR_OUTPOST_PIN_MISMATCH',
      presentedPin: presented,
      subject: cert.subject?.CN,
      subjectaltname: cert.subjectaltname,
    });
  };
}

const hostPort = (u: URL) => `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;

/** Builds the dispatcher for `exchange.connection`. Throws TransportError `config` for settings that cannot work. */
export function buildTransport(c: ConnectionConfig): Transport {
  if (c.url === '') throw config('exchange.connection.url is not set: give the upstream\'s URL, such as https://upstream.example:8183');
  const url = new URL(c.url);
  if (url.search || url.hash) throw config(`exchange.connection.url ${c.url} may not carry a query or fragment`);
  const timeouts = { connectMs: c.connectTimeoutSeconds * 1000, headersMs: c.headersTimeoutSeconds * 1000, bodyMs: c.bodyTimeoutSeconds * 1000 };
  const pin = c.pinSha256 || undefined;
  const requestTls = {
    ...(url.protocol === 'https:' ? { ca: trustedCas(c) } : {}),
    checkServerIdentity: checkIdentity(pin),
    timeout: timeouts.connectMs,
    // A resumed session skips the identity check; a full handshake each time keeps the pin checked on every connection.
    ...(pin ? { maxCachedSessions: 0 } : {}),
  };
  const common = { headersTimeout: timeouts.headersMs, bodyTimeout: timeouts.bodyMs };
  const base = {
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    endpoint: hostPort(url),
    pin,
    timeouts,
  };
  if (c.proxyUrl === '') {
    if (c.proxyUsername || c.proxyPasswordFile) throw config('exchange.connection.proxyUsername and proxyPasswordFile are set but proxyUrl is not');
    return { ...base, dispatcher: new Agent({ ...common, connect: requestTls }) };
  }
  const proxyUrl = new URL(c.proxyUrl);
  if (proxyUrl.username || proxyUrl.password) {
    throw config('exchange.connection.proxyUrl carries credentials: put the user in proxyUsername and the password in proxyPasswordFile, so that it is never shown with the URL');
  }
  if (Boolean(c.proxyUsername) !== Boolean(c.proxyPasswordFile)) {
    throw config('exchange.connection.proxyUsername and proxyPasswordFile go together: set both for proxy authentication, or neither');
  }
  const token = c.proxyUsername ? `Basic ${Buffer.from(`${c.proxyUsername}:${readPasswordFile(c.proxyPasswordFile)}`).toString('base64')}` : undefined;
  const dispatcher = new ProxyAgent({
    uri: proxyUrl.href,
    ...(token ? { token } : {}),
    // Always a CONNECT tunnel, even to a plain-http upstream: the proxy relays bytes and never reads the exchange.
    proxyTunnel: true,
    ...common,
    requestTls,
    proxyTls: { ...(proxyUrl.protocol === 'https:' ? { ca: trustedCas(c) } : {}), timeout: timeouts.connectMs },
    // The CONNECT request's answer is part of connecting: bounded like a connection, not like a reply.
    clientFactory: (origin: URL, opts: object) => new Pool(origin, { ...opts, headersTimeout: timeouts.connectMs, bodyTimeout: timeouts.connectMs }),
  });
  return {
    ...base,
    dispatcher,
    proxy: { endpoint: hostPort(proxyUrl), username: c.proxyUsername, passwordFile: c.proxyPasswordFile },
  };
}
