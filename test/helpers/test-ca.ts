import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp.js';

/** One certificate and its key, as files, and the pin of its public key. */
export interface TestCert {
  cert: string;
  key: string;
  /** sha256//<base64 SHA-256 of the SPKI DER>, computed here in node, independently of the client. */
  pin: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM): what a collector's caFile names. */
  caFile: string;
  /** For 127.0.0.1, ::1 and localhost, signed by the CA. */
  server: TestCert;
  /** For upstream.other.example only, signed by the CA: a host name mismatch on 127.0.0.1. */
  otherName: TestCert;
  /** For 127.0.0.1/localhost, self-signed: trusted by no one. */
  selfSigned: TestCert;
  /** For 127.0.0.1/localhost, signed by a second CA (rogueCaFile) that the collector does not trust. */
  rogue: TestCert;
  rogueCaFile: string;
}

/** The pin of a PEM certificate's public key, from node's own X.509 parser. */
export function pinOf(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}

const ossl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(dir: string, name: string): void {
  ossl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=Outpost test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function issue(dir: string, name: string, san: string, ca: string | null): TestCert {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  if (ca === null) {
    ossl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`], dir);
  } else {
    ossl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', String(Date.now()), '-days', '2', '-extfile', ext, '-out', `${name}.pem`], dir);
  }
  const cert = join(dir, `${name}.pem`);
  return { cert, key: join(dir, `${name}.key`), pin: pinOf(readFileSync(cert, 'utf8')) };
}

/**
 * A throwaway CA and server certificates, made with the openssl command into a fresh temp
 * folder (removed after the test file). EC P-256 keys: about 0.1 s in all.
 */
export function makeTestCa(): TestCa {
  const dir = tempDir('ca');
  const local = 'IP:127.0.0.1,IP:::1,DNS:localhost';
  makeCa(dir, 'ca');
  makeCa(dir, 'rogue-ca');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    server: issue(dir, 'server', local, 'ca'),
    otherName: issue(dir, 'other-name', 'DNS:upstream.other.example', 'ca'),
    selfSigned: issue(dir, 'self-signed', local, null),
    rogue: issue(dir, 'rogue', local, 'rogue-ca'),
    rogueCaFile: join(dir, 'rogue-ca.pem'),
  };
}
