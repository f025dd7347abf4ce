import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '../../src/shared/logger.js';
import type { Services } from '../../src/services.js';

/**
 * The secret check: every secret a test file makes or is given (passwords, token secrets, device
 * passwords, the cloud client secret, proxy passwords, private keys) is recorded, and so is
 * every log line, every API answer and every server process's output; at the end of the file,
 * none of the secrets may appear in a log line, a process's output, or an answer other than the
 * one that created it. Recording only stores strings: the search runs once, in checkSecrets().
 */

interface Secret {
  kind: string;
  /** The answer that created it (and alone may show it), if an answer did. */
  origin?: number;
}

/** Shorter strings turn up by chance in ids and base64; no secret the tests make is this short. */
const MIN_LENGTH = 8;
/** Answers are kept up to this size: a secret is in the small JSON answers, not in bundle downloads. */
const MAX_ANSWER = 256 * 1024;

const secrets = new Map<string, Secret>();
const logLines: string[] = [];
const logTests: string[] = [];
const answers: { where: string; test: string; body: string }[] = [];
const outputs: { what: string; test: string; read: () => string }[] = [];
const dataDirs = new Set<string>();
let currentTest = '';

export const setCurrentTest = (name: string) => void (currentTest = name);

/** Records a secret of `kind` (as the report names it); `origin` is the answer that made it. */
export function recordSecret(kind: string, value: unknown, origin?: number): void {
  if (typeof value !== 'string' || value.length < MIN_LENGTH) return;
  const known = secrets.get(value);
  // A secret the service made, seen first as the service returned it, is then allowed in the answer that carries it out.
  if (known) {
    if (known.origin === undefined && origin !== undefined) known.origin = origin;
    return;
  }
  secrets.set(value, origin === undefined ? { kind } : { kind, origin });
}

/** A PEM private key: each line of its body is recorded, so that a key printed whole or in part is found. */
export function recordPrivateKeyPem(kind: string, pem: string): void {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return;
  for (const line of pem.split(/\r?\n/)) if (!line.startsWith('-----') && line.length >= 16) recordSecret(kind, line);
}

/** The secrets a file holds, by what the file is. */
export function recordSecretFile(kind: string, file: string): void {
  let text: string;
  try {
    if (!statSync(file).isFile()) return;
    text = readFileSync(file, 'utf8');
  } catch {
    return;
  }
  if (text.includes('PRIVATE KEY-----')) recordPrivateKeyPem(kind, text);
  else recordSecret(kind, text.replace(/\r?\n$/, ''));
}

/** A data folder (collector or upstream) whose keys are recorded at the check, when every key it will have is made. */
export const recordDataDir = (dir: string) => void dataDirs.add(dir);

/** The keys a data folder holds now (a harness records them before it removes its folder). */
export function recordKeysOf(dataDir: string): void {
  const keys = join(dataDir, 'keys');
  if (!existsSync(keys)) return;
  for (const name of readdirSync(keys)) if (!name.endsWith('.json')) recordSecretFile(name.includes('secrets') ? 'secret key' : 'private key', join(keys, name));
}

/** A logger at debug level that records every line it writes and prints none. */
export function capturingLogger(): Logger {
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      logLines.push(String(chunk));
      logTests.push(currentTest);
      done();
    },
  });
  return winston.createLogger({
    level: 'debug',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
}

/** A process's whole output, read at the check. */
export const recordOutput = (what: string, read: () => string) => void outputs.push({ what, test: currentTest, read });

/** What a request body field holds, when its name says it is a secret. */
function fieldKind(key: string, path: string): string | undefined {
  if (key === 'clientSecret') return "Cisco cloud client secret";
  if (/password/i.test(key)) return path.includes('/cisco/devices') ? 'device password' : /proxy/i.test(key) ? 'proxy password' : 'user password';
  if (/secret/i.test(key)) return 'secret';
  return undefined;
}

function harvestBody(body: unknown, path: string, depth = 0): void {
  // Parsed JSON only: a raw body (a RUM upload is a Buffer) would be walked byte by byte.
  if (typeof body !== 'object' || body === null || ArrayBuffer.isView(body) || depth > 3) return;
  for (const [k, v] of Object.entries(body)) {
    if (typeof v === 'string') {
      const kind = fieldKind(k, path);
      if (kind) recordSecret(kind, v);
      else if (k === 'csv') harvestCsv(v);
    } else harvestBody(v, path, depth + 1);
  }
}

/** Device passwords from a CSV import: the column its header names, or the fifth. */
function harvestCsv(csv: string): void {
  const lines = csv.split(/\r?\n/).filter(Boolean);
  const header = lines[0]?.toLowerCase().split(',') ?? [];
  const col = header.includes('password') ? header.indexOf('password') : 4;
  for (const line of header.includes('password') ? lines.slice(1) : lines) recordSecret('device password', line.split(',')[col]);
}

const answerKind = (path: string) => (/\/tokens?(\/|$|\?)/.test(path) && !path.includes('/auth/') && !path.includes('/users/') ? 'registration token secret' : 'API token secret');

/**
 * Wraps a request handler so that the request's secrets (by field name, once parsed) and the
 * answer's body are recorded, and a secret an answer creates (a `secret` field) is allowed in
 * that answer alone.
 */
export function tapSecrets(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (c: unknown, enc?: unknown) => {
      if (c === undefined || c === null || typeof c === 'function' || size > MAX_ANSWER) return;
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string, typeof enc === 'string' ? (enc as BufferEncoding) : 'utf8');
      size += b.length;
      chunks.push(b);
    };
    const write = res.write.bind(res) as (...a: unknown[]) => boolean;
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
    res.write = ((...a: unknown[]) => (keep(a[0], a[1]), write(...a))) as typeof res.write;
    res.end = ((...a: unknown[]) => (keep(a[0], a[1]), end(...a))) as typeof res.end;
    const test = currentTest;
    res.once('finish', () => {
      const path = (req.url ?? '').split('?')[0]!;
      harvestBody((req as { body?: unknown }).body, path);
      const type = String(res.getHeader('content-type') ?? '');
      if (!/json|text|csv/.test(type)) return;
      const body = Buffer.concat(chunks).toString('utf8');
      const id = answers.push({ where: `the answer ${res.statusCode} to ${req.method} ${path}`, test, body }) - 1;
      if (type.includes('json') && (req.method === 'POST' || req.method === 'PATCH')) {
        try {
          recordSecret(answerKind(path), (JSON.parse(body) as { secret?: unknown }).secret, id);
        } catch {
          // not JSON after all: nothing was created
        }
      }
    });
    handler(req, res);
  };
}

type Method = (...args: never[]) => unknown;

/** Calls `seen` with the arguments and the result of each call of `obj[name]` (awaited when it is a promise). */
function spy<T extends object>(obj: T, name: keyof T & string, seen: (args: unknown[], result: unknown) => void): void {
  const f = obj[name] as unknown as Method;
  (obj as Record<string, unknown>)[name] = function (this: unknown, ...args: never[]) {
    const out = f.apply(this, args);
    if (out instanceof Promise) return out.then((r: unknown) => (seen(args, r), r));
    seen(args, out);
    return out;
  };
}

const field = (v: unknown, k: string): unknown => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined);

/**
 * Records the secrets a test makes through the services rather than the API (users, tokens,
 * polled devices, the cloud client secret): the services are where every secret is made or
 * given, whichever way a test reaches them.
 */
export function watchServices(services: Services): void {
  const { users, tokens, cisco, cloud } = services;
  spy(users, 'add', ([input]) => recordSecret('user password', field(input, 'password')));
  spy(users, 'resetPassword', ([, password]) => recordSecret('user password', password));
  spy(users, 'login', ([, password]) => recordSecret('user password', password));
  spy(users, 'createToken', (_, r) => recordSecret('API token secret', field(r, 'secret')));
  spy(tokens, 'create', (_, r) => recordSecret('registration token secret', field(r, 'secret')));
  spy(cisco.devices, 'add', ([input]) => recordSecret('device password', field(input, 'password')));
  spy(cisco.devices, 'edit', ([, patch]) => recordSecret('device password', field(patch, 'password')));
  spy(cisco.devices, 'importCsv', ([csv]) => typeof csv === 'string' && harvestCsv(csv));
  spy(cloud.credentials, 'set', ([secret]) => recordSecret('Cisco cloud client secret', secret));
}

/** Secrets given to a process: passwords in its environment, and the secret files it is pointed at. */
export function recordProcessSecrets(args: string[], env: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('OUTPOST_') || v === undefined) continue;
    if (k === 'OUTPOST_DATA_DIR' || k === 'OUTPOST_UPSTREAM_DATA_DIR') recordDataDir(v);
    else if (/(PASSWORD|KEY)_FILE$/.test(k)) recordSecretFile(k.includes('PROXY') ? 'proxy password' : k.includes('KEY') ? 'TLS private key' : 'password', v);
    else if (/PASSWORD|SECRET/.test(k)) recordSecret(/DEVICE/.test(k) ? 'device password' : /CLIENT_SECRET/.test(k) ? 'Cisco cloud client secret' : 'user password', v);
  }
  args.forEach((a, i) => {
    const next = args[i + 1];
    if (next === undefined) return;
    if (a === '--dir') recordDataDir(next);
    else if (/^--(password|secret)-file$/.test(a)) recordSecretFile(a.includes('secret') ? 'Cisco cloud client secret' : 'password', next);
  });
}

/** Token secrets a CLI command printed: it showed them once, as it should; they must show nowhere else. */
export function recordPrintedTokens(stdout: string): void {
  for (const m of stdout.matchAll(/\bopt_[A-Za-z0-9_.-]{20,}/g)) recordSecret('token secret', m[0]);
}

const hashOf = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
const forms = (s: string) => [...new Set([s, JSON.stringify(s).slice(1, -1)])];

/** Every place a recorded secret appears where it must not, one line each, naming its kind and hash, never the secret. */
export function findLeaks(): string[] {
  for (const d of dataDirs) recordKeysOf(d);
  const leaks: string[] = [];
  if (secrets.size === 0) return leaks;
  const log = logLines.join('');
  const starts: number[] = [];
  let at = 0;
  for (const l of logLines) starts.push(at), (at += l.length);
  const lineAt = (offset: number) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const texts = outputs.map((o) => ({ ...o, text: o.read() }));
  for (const [value, s] of secrets) {
    const name = `a ${s.kind} (sha256 ${hashOf(value)}…)`;
    for (const f of forms(value)) {
      const i = log.indexOf(f);
      if (i >= 0) {
        const n = lineAt(i);
        leaks.push(`${name} appears in log line ${n + 1} (written during "${logTests[n]}")`);
      }
      answers.forEach((a, id) => {
        if (id !== s.origin && a.body.includes(f)) leaks.push(`${name} appears in ${a.where} (during "${a.test}")`);
      });
      for (const o of texts) if (o.text.includes(f)) leaks.push(`${name} appears in the output of the ${o.what} (started during "${o.test}")`);
    }
  }
  return [...new Set(leaks)];
}

/** What is recorded so far, for the check's own test. */
export const recorded = () => ({ secrets: secrets.size, logLines: logLines.length, answers: answers.length, outputs: outputs.length });

export function resetSecretCheck(): void {
  secrets.clear();
  logLines.length = 0;
  logTests.length = 0;
  answers.length = 0;
  outputs.length = 0;
  dataDirs.clear();
}

/** The end of a test file: throws naming every leak, then forgets the file. */
export function checkSecrets(): void {
  const leaks = findLeaks();
  resetSecretCheck();
  if (leaks.length > 0) throw new Error(`secrets leaked (the secret check, test/helpers/secrets.ts):\n  ${leaks.join('\n  ')}`);
}
