import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { connect as tlsConnect, createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Agent, buildConnector, request } from 'undici';
import type { TlsMode } from './polled-devices.js';

/** The largest answer a device may give (its reports of a month are a few hundred KiB). */
const MAX_ANSWER = 32 << 20;

export class DeviceError extends Error {
  constructor(
    readonly code: 'unreachable' | 'timeout' | 'tls' | 'auth' | 'http' | 'malformed' | 'too_large',
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** A certificate's SHA-256 fingerprint as openssl prints it, lower case. */
export const certFingerprint = (raw: Buffer) => createHash('sha256').update(raw).digest('hex').match(/../g)!.join(':');

/**
 * The trust store of ca mode (the system's CAs and cisco.caFile), built once for a CA text.
 * Given as `ca`, Node parses every certificate again for each connection: about 25 ms of the
 * event loop each, two connections a device, which held device reports back for seconds at a
 * time while a thousand devices were polled.
 */
let trusted: { ca: string; context: SecureContext } | undefined;
function trustStore(ca: string): SecureContext {
  if (trusted?.ca !== ca) trusted = { ca, context: createSecureContext({ ca: [...rootCertificates, ca] }) };
  return trusted.context;
}

export interface DeviceTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  tls: { mode: TlsMode; pin: string | null };
}

/**
 * One IOS-XE device's Smart Licensing REST API: HTTPS with Basic authentication on every
 * request. Its certificate is checked against the CA, or against the pinned fingerprint (most
 * devices present self-signed certificates), or not at all when the operator chose so.
 */
export class DeviceClient {
  private agent: Agent;
  private auth: string;
  /** The fingerprint of the certificate the device presented, for test-connection to show. */
  presented: string | null = null;

  constructor(
    private target: DeviceTarget,
    private o: { timeoutMs: number; ca?: string | undefined },
  ) {
    this.auth = 'Basic ' + Buffer.from(`${target.username}:${target.password}`).toString('base64');
    // The CA check is Node's own (chain and host name); a pin is checked on every connection
    // once the handshake is done (a pinned device's certificate is usually self-signed, which
    // the CA check would refuse first); sessions are not resumed, so no connection skips it.
    const base = buildConnector({
      timeout: o.timeoutMs,
      maxCachedSessions: 0,
      rejectUnauthorized: target.tls.mode === 'ca',
      ...(target.tls.mode === 'ca' && o.ca ? { secureContext: trustStore(o.ca) } : {}),
    });
    const connect: buildConnector.connector = (opts, cb) =>
      base(opts, (err, socket) => {
        if (err || !socket) return cb(err ?? new Error('no connection'), null);
        const raw = (socket as TLSSocket).getPeerCertificate?.().raw;
        this.presented = raw ? certFingerprint(raw) : null;
        if (target.tls.mode === 'pin' && this.presented !== target.tls.pin) {
          socket.destroy();
          return cb(new Error(`the device presented certificate ${this.presented ?? '(none)'}, not the pinned ${target.tls.pin}`), null);
        }
        cb(null, socket);
      });
    // One connection a device: left to itself the pool opens a second one (a second TLS
    // handshake on both sides) while it checks that the idle first one is still open.
    this.agent = new Agent({ connect, connections: 1, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
  }

  private get where(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  /** Sends one request; the whole answer must arrive within the timeout. */
  private async call(method: 'GET' | 'POST', path: string, body?: string): Promise<string> {
    const signal = AbortSignal.timeout(this.o.timeoutMs);
    let res;
    try {
      res = await request(`https://${this.target.host.includes(':') ? `[${this.target.host}]` : this.target.host}:${this.target.port}${path}`, {
        method, dispatcher: this.agent, signal,
        headers: { authorization: this.auth, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
    } catch (e) {
      const err = this.failure(e);
      if (err.code === 'tls') {
        // A certificate the CA check refused is never shown to checkServerIdentity: look at it
        // once more, without trusting it, so that the operator can compare and pin it.
        this.presented ??= await presentedFingerprint(this.target.host, this.target.port, this.o.timeoutMs).catch(() => null);
        if (this.presented) err.message += ` (it presented certificate ${this.presented}; pin it with --pin once its owner confirms it)`;
      }
      throw err;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > MAX_ANSWER) {
          res.body.destroy();
          throw new DeviceError('too_large', `${this.where} answered ${path} with more than ${MAX_ANSWER} bytes`, false);
        }
        chunks.push(c);
      }
    } catch (e) {
      throw e instanceof DeviceError ? e : this.failure(e);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new DeviceError('auth', `${this.where} refused the username and password (${res.statusCode}): check them with \`outpost cisco devices edit\``, false);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new DeviceError('http', `${this.where} answered ${path} with ${res.statusCode}`, res.statusCode >= 500 || res.statusCode === 429);
    }
    return text;
  }

  private failure(e: unknown): DeviceError {
    const err = e as { code?: string; name?: string; message?: string; cause?: { code?: string; message?: string } };
    const code = err.code ?? err.cause?.code ?? '';
    const msg = err.cause?.message ?? err.message ?? String(e);
    if (err.name === 'TimeoutError' || err.name === 'AbortError' || /TIMEOUT/.test(code)) return new DeviceError('timeout', `${this.where} did not answer within ${this.o.timeoutMs / 1000} s (cisco.timeoutSeconds)`, true);
    if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY|presented certificate|not for/.test(`${code} ${msg}`)) {
      return new DeviceError('tls', `${this.where}: ${msg}`, false);
    }
    if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN/.test(code)) return new DeviceError('unreachable', `nothing answers at ${this.where} (${code})`, true);
    return new DeviceError('unreachable', `${this.where}: ${msg}`, true);
  }

  /** Closes the device's open RUM reports, so that all-reports holds every measurement so far. */
  async closeReports(): Promise<void> {
    await this.call('POST', '/smartlic-service/close-reports', '{}');
  }

  /** The device's reports, as the text of its answer ({"usage": [ … ]}). */
  allReports(): Promise<string> {
    return this.call('GET', '/smartlic-service/all-reports');
  }

  /** The device's list of reports: a request that changes nothing, to try the connection and the password. */
  async listReports(): Promise<void> {
    await this.call('GET', '/smartlic-service/list');
  }

  /** Gives the device an ACK or policy file's content. */
  async importAck(content: string): Promise<void> {
    await this.call('POST', '/smartlic-service/import', content);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The fingerprint of the certificate a TLS server presents, read without trusting it (nothing is sent). */
export function presentedFingerprint(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, rejectUnauthorized: false, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }), timeout: timeoutMs }, () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      raw ? resolve(certFingerprint(raw)) : reject(new Error('no certificate'));
    });
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}
