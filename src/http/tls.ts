import { answerClientErrors } from './server.js';
import https from 'node:https';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import { readSecretFile } from '../shared/secret-file.js';

/** TLS 1.0 and 1.1 are broken and deprecated (RFC 8996). */
const MIN_VERSION = 'TLSv1.2';

/** A certificate and its key, read, checked against each other, and what the logs say of them. */
export interface TlsPair {
  context: SecureContextOptions;
  subject: string;
  names: string;
  validTo: string;
}

/** Whether the configuration asks for the HTTPS listener; a half-configured pair is an error. */
export function httpsWanted(h: Config['https']): boolean {
  if (Boolean(h.certFile) !== Boolean(h.keyFile)) {
    throw new Error(`https.certFile and https.keyFile go together: ${h.certFile ? 'https.keyFile' : 'https.certFile'} is not set`);
  }
  return Boolean(h.certFile);
}

/**
 * Reads https.certFile and https.keyFile. The key must be readable by its owner only, as an ssh
 * key must (the message gives the chmod), and must be the certificate's: a pair that does not
 * belong together is refused here, not at the first handshake. Throws an Error naming the file.
 */
export function readTlsPair(h: Pick<Config['https'], 'certFile' | 'keyFile'>): TlsPair {
  const certFile = resolve(h.certFile);
  const keyFile = resolve(h.keyFile);
  const key = readSecretFile(keyFile, 'private key (https.keyFile)');
  let cert: string;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the certificate (https.certFile) ${certFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`the certificate (https.certFile) ${certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  const context: SecureContextOptions = { cert, key, minVersion: MIN_VERSION };
  try {
    createSecureContext(context);
  } catch (e) {
    throw new Error(`the certificate (https.certFile) ${certFile} and the key (https.keyFile) ${keyFile} cannot be used together: ${(e as Error).message}`);
  }
  return { context, subject: x509.subject.replace(/\n/g, ', '), names: x509.subjectAltName ?? '', validTo: x509.validTo };
}

export interface TlsListener {
  server: https.Server;
  /**
   * Reads the files again (SIGHUP): a good pair serves every new connection from then on (those
   * open keep theirs); a bad one is logged and refused, and the pair in use goes on serving.
   */
  reload(): boolean;
}

/** The HTTPS listener: the same handler and timeouts as the plain one, with the certificate of `pair`. */
export function createTlsListener(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  h: Config['https'],
  pair: TlsPair,
  options: ServerOptions & { handshakeTimeout?: number },
  logger: Logger,
): TlsListener {
  const server = https.createServer({ ...options, ...pair.context }, handler);
  answerClientErrors(server);
  const describe = (p: TlsPair) => ({ subject: p.subject, names: p.names, validTo: p.validTo });
  logger.info('HTTPS certificate loaded', describe(pair));
  return {
    server,
    reload() {
      let next: TlsPair;
      try {
        next = readTlsPair(h);
      } catch (e) {
        logger.error('the new HTTPS certificate and key were refused; the ones in use go on serving', { error: (e as Error).message });
        return false;
      }
      server.setSecureContext(next.context);
      logger.info('HTTPS certificate reloaded: new connections get it', describe(next));
      return true;
    },
  };
}
