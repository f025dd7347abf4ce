import { createReadStream, createWriteStream, openSync, readSync, closeSync } from 'node:fs';
import { assertReadableFile } from '../shared/files.js';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import nacl from 'tweetnacl';
import { MANIFEST, SIGNATURE, manifestSchema, type BundleKind, type Manifest } from './manifest.js';
import { readTar, TarError, type TarEntry } from './tar.js';
import { DuplicateKeyError, parseStrictJson } from './strict-json.js';
import { sha256hex } from '../shared/hash.js';
import { pathText } from '../shared/validation.js';
import { AppError } from '../shared/errors.js';
import { decodePublicKey, fingerprint } from '../shared/ed25519.js';

/** A refused bundle: 409 for a sequence problem (replay, out of order), else 400. Nothing was applied. */
export class BundleError extends AppError {
  constructor(code: string, message: string) {
    super(code === 'replay' || code === 'out_of_order' ? 409 : 400, code, message);
    this.name = 'BundleError';
  }
}

/**
 * What an unverified manifest claims about its signer: read with a plain JSON parse only to
 * look up the key, never acted on before the signature over the exact bytes verifies.
 */
export interface SignerHint {
  keyId: string;
  collectorId: string;
  sequence: number;
  /** The kind the manifest claims; the verified manifest must say the same (checked after the signature). */
  kind: string;
  meta: Record<string, unknown>;
}

export interface VerifyOptions {
  kinds: readonly BundleKind[];
  /** The raw public key that must have signed this manifest; throw a BundleError for an unknown or retired signer. */
  keyFor: (hint: SignerHint) => Buffer;
  /** If given, verified payloads are also decompressed here (as <name without .gz>) for applying. */
  extractTo?: string;
  /**
   * Bounds on what extraction writes: all payloads together at most `maxBytes`, each at most
   * `maxRatio` times its compressed size. Even a validly signed bundle is refused past them: a
   * 2 MB response once extracted 2 GiB and blocked devices for 112 s.
   */
  extractLimits?: { maxBytes: number; maxRatio: number };
}

export interface VerifiedBundle {
  manifest: Manifest;
  manifestBytes: Buffer;
  hash: string;
}

const MAX_MANIFEST = 1 << 20;
/** The longest NDJSON line a payload may hold (a RUM report with every measurement of a month fits many times over). */
const MAX_LINE = 64 << 20;

async function collect(body: AsyncIterable<Buffer>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new BundleError('malformed_archive', `${what} is larger than ${max} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/**
 * Verifies a bundle before anything in it is believed: the manifest is the first member and
 * its signature the second; the signature is checked before the manifest's claims are used;
 * every other member must be a payload the manifest lists, once, with its size and SHA-256.
 * Runs in bounded memory whatever the bundle's size.
 */
export async function verifyBundle(path: string, opts: VerifyOptions): Promise<VerifiedBundle> {
  // Checked before anything opens it: opening a FIFO blocks until it gets a writer.
  assertReadableFile(path);
  let manifestBytes: Buffer | undefined;
  let manifest: Manifest | undefined;
  let verified = false;
  const seen = new Set<string>();
  try {
    await readTar(createReadStream(path, { highWaterMark: 1 << 20 }), async (entry, body) => {
      if (seen.has(entry.name)) throw new BundleError('duplicate_member', `the archive holds two members named ${entry.name}`);
      seen.add(entry.name);
      if (!manifestBytes) {
        if (entry.name !== MANIFEST) throw new BundleError('malformed_archive', `the first member must be ${MANIFEST}, not ${entry.name}`);
        manifestBytes = await collect(body, MAX_MANIFEST, MANIFEST);
        return;
      }
      if (!verified) {
        if (entry.name !== SIGNATURE) throw new BundleError('malformed_archive', `the second member must be ${SIGNATURE}, not ${entry.name}`);
        const sig = await collect(body, 64, SIGNATURE);
        const hint = signerHint(manifestBytes);
        const key = opts.keyFor(hint);
        if (sig.length !== 64 || !nacl.sign.detached.verify(manifestBytes, sig, key)) {
          throw new BundleError('bad_signature', `the manifest signature does not verify with key ${hint.keyId}`);
        }
        verified = true;
        // Only now, on signed bytes, is the manifest parsed and believed.
        manifest = parseManifest(manifestBytes);
        if (manifest.signer.keyId !== hint.keyId) throw new BundleError('bad_signature', 'the manifest names two signers');
        if (manifest.kind !== hint.kind) throw new BundleError('bad_signature', 'the manifest names two kinds');
        if (!opts.kinds.includes(manifest.kind)) {
          throw new BundleError('wrong_kind', `this is a ${manifest.kind} bundle; expected ${opts.kinds.join(' or ')}`);
        }
        return;
      }
      const listed = manifest!.payloads.find((p) => p.name === entry.name);
      if (!listed) throw new BundleError('unlisted_member', `the archive holds ${entry.name}, which the manifest does not list`);
      if (entry.size !== listed.size) {
        throw new BundleError('payload_mismatch', `payload ${entry.name} is ${entry.size} bytes; the manifest says ${listed.size}`);
      }
      const hash = createHash('sha256');
      for await (const c of body) hash.update(c);
      if (hash.digest('hex') !== listed.sha256) throw new BundleError('payload_mismatch', `payload ${entry.name} does not match its SHA-256 in the manifest`);
    });
  } catch (e) {
    if (e instanceof TarError) throw new BundleError(e.code, e.message);
    throw e;
  }
  if (!manifest || !manifestBytes) throw new BundleError('malformed_archive', 'the archive holds no manifest');
  if (!verified) throw new BundleError('bad_signature', `the archive holds no ${SIGNATURE}`);
  for (const p of manifest.payloads) {
    if (!seen.has(p.name)) throw new BundleError('missing_payload', `payload ${p.name} is listed in the manifest but missing`);
  }
  if (opts.extractTo) await extract(path, manifest, opts.extractTo, opts.extractLimits ?? { maxBytes: Number.MAX_SAFE_INTEGER, maxRatio: Number.MAX_SAFE_INTEGER });
  return { manifest, manifestBytes, hash: sha256hex(manifestBytes) };
}

/** Reads the manifest alone, trusting nothing: for showing a reviewer what a bundle claims. */
export async function readManifest(path: string): Promise<{ manifest: Manifest; hash: string }> {
  let found: { manifest: Manifest; hash: string } | undefined;
  const stop = new Error('stop');
  try {
    await readTar(createReadStream(path), async (entry, body) => {
      if (entry.name !== MANIFEST) throw new BundleError('malformed_archive', `the first member must be ${MANIFEST}, not ${entry.name}`);
      const bytes = await collect(body, MAX_MANIFEST, MANIFEST);
      found = { manifest: parseManifest(bytes), hash: sha256hex(bytes) };
      throw stop;
    });
  } catch (e) {
    if (e !== stop) throw e instanceof TarError ? new BundleError(e.code, e.message) : e;
  }
  if (!found) throw new BundleError('malformed_archive', 'the archive holds no manifest');
  return found;
}

/**
 * For bundles that carry the key that signed them (enrollment): that key, if it is the one the
 * signer id names. Trust in it comes from the fingerprint the operators compare, not from here.
 */
export function selfSignedKey(hint: SignerHint): Buffer {
  const key = decodePublicKey(String(hint.meta.publicKey ?? ''));
  if (!key || fingerprint(key) !== hint.keyId) throw new BundleError('malformed_manifest', 'the bundle does not carry the key that signed it');
  return key;
}

function signerHint(bytes: Buffer): SignerHint {
  try {
    const o = JSON.parse(bytes.toString('utf8')) as { signer?: { keyId?: unknown }; collectorId?: unknown; sequence?: unknown; kind?: unknown; meta?: unknown };
    if (typeof o.signer?.keyId === 'string') {
      return {
        keyId: o.signer.keyId, collectorId: String(o.collectorId ?? ''), sequence: Number(o.sequence ?? 0), kind: String(o.kind ?? ''),
        meta: typeof o.meta === 'object' && o.meta ? (o.meta as Record<string, unknown>) : {},
      };
    }
  } catch {
    /* fall through: nothing names a signer */
  }
  throw new BundleError('bad_signature', `${MANIFEST} names no signer, so its signature cannot be checked`);
}

function parseManifest(bytes: Buffer): Manifest {
  let raw: unknown;
  try {
    raw = parseStrictJson(bytes.toString('utf8'));
  } catch (e) {
    if (e instanceof DuplicateKeyError) throw new BundleError('duplicate_keys', `${MANIFEST} has a ${e.message}`);
    throw new BundleError('malformed_manifest', `${MANIFEST} is not JSON: ${(e as Error).message}`);
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const code = i.path[0] === 'formatVersion' ? 'unknown_format' : i.path.join('.') === 'signer.algorithm' ? 'unknown_algorithm' : 'malformed_manifest';
    throw new BundleError(code, `${MANIFEST}: ${pathText(i.path) || '(root)'}: ${i.message}`);
  }
  return r.data;
}

/** A member's bytes as a stream, each chunk hashed as it passes. */
function hashing(body: AsyncIterable<Buffer>, hash: Hash): Readable {
  return Readable.from(
    (async function* () {
      for await (const c of body) {
        hash.update(c);
        yield c;
      }
    })(),
  );
}

/** Second pass: decompress each payload, hashing it again so a file changed since the first pass is caught. */
async function extract(path: string, manifest: Manifest, dir: string, limits: { maxBytes: number; maxRatio: number }): Promise<void> {
  let total = 0;
  await readTar(createReadStream(path, { highWaterMark: 1 << 20 }), async (entry, body) => {
    const listed = manifest.payloads.find((p) => p.name === entry.name);
    if (!listed) return;
    const hash = createHash('sha256');
    const tapped = hashing(body, hash);
    // 64 KiB of slack: a tiny payload may legitimately inflate past the ratio.
    const perPayload = Math.max(listed.size * limits.maxRatio, 1 << 16);
    let mine = 0;
    let tooBig: BundleError | null = null;
    const bounded = new Transform({
      transform(chunk: Buffer, _enc, done) {
        mine += chunk.length;
        total += chunk.length;
        if (mine > perPayload) tooBig = new BundleError('payload_too_large', `payload ${entry.name} inflates to more than ${limits.maxRatio} times its ${listed.size} compressed bytes (exchange.maxResponseRatio)`);
        else if (total > limits.maxBytes) tooBig = new BundleError('payload_too_large', `the bundle's payloads inflate to more than ${limits.maxBytes} bytes (exchange.maxResponseBytes)`);
        done(tooBig, tooBig ? undefined : chunk);
      },
    });
    try {
      await pipeline(tapped, createGunzip(), bounded, createWriteStream(join(dir, entry.name.replace(/\.gz$/, '')), { mode: 0o600 }));
    } catch (e) {
      if (tooBig) throw tooBig;
      throw new BundleError('payload_mismatch', `payload ${entry.name} cannot be decompressed: ${(e as Error).message}`);
    }
    if (hash.digest('hex') !== listed.sha256) throw new BundleError('payload_mismatch', `payload ${entry.name} changed while it was read`);
  });
}

/**
 * A second pass over a verified bundle that streams one payload's lines to `onLines`, a chunk
 * of lines at a time, decompressing on the way with no copy on disk. The compressed bytes are
 * hashed again as they pass, and a file changed since it was verified is refused when its end
 * is reached: a caller applies the lines inside a transaction, which it then rolls back.
 * Returns the number of lines.
 */
export async function streamPayloadLines(
  path: string,
  manifest: Manifest,
  name: string,
  onLines: (lines: string[], before: number) => void | Promise<void>,
): Promise<number> {
  const listed = manifest.payloads.find((p) => p.name === name);
  if (!listed) return 0;
  let count = 0;
  let found = false;
  const deliver = async (lines: string[]) => {
    const kept = lines.filter((l) => l !== '');
    if (kept.length) await onLines(kept, count);
    count += kept.length;
  };
  const member = async (entry: TarEntry, body: AsyncIterable<Buffer>) => {
    if (entry.name !== name) return;
    found = true;
    const hash = createHash('sha256');
    const tapped = hashing(body, hash);
    // 1 MiB output chunks: at the default 16 KiB, decompressing 1.4 GB takes four times as long.
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    const decoder = new StringDecoder('utf8'); // a character split across two chunks stays whole
    let rest = '';
    let refusal: unknown; // pipeline may report the abort it caused instead of the refusal that caused it
    const refuse = (e: unknown) => {
      refusal ??= e;
      throw e;
    };
    const split = async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) {
        const lines = (rest + decoder.write(c)).split('\n');
        rest = lines.pop()!;
        // Even a signed bundle gets a bound: no record is this long, and memory must stay flat.
        if (rest.length > MAX_LINE) refuse(new BundleError('malformed_payload', `payload ${name} line ${count + lines.length + 1} is longer than ${MAX_LINE} characters`));
        await deliver(lines).catch(refuse);
      }
    };
    try {
      // pipeline, not .pipe: an error of the tar reader (a file cut short) fails the whole chain
      // instead of leaving gunzip waiting for an end that never comes.
      await pipeline(tapped, gunzip, split);
    } catch (err) {
      const e = refusal ?? err;
      // zlib's errors carry Z_ codes; anything else (the caller's own refusals) passes as it is.
      if (!String((e as { code?: unknown }).code ?? '').startsWith('Z_')) throw e;
      throw new BundleError('payload_mismatch', `payload ${name} cannot be decompressed: ${(e as Error).message}`);
    }
    await deliver([rest + decoder.end()]);
    if (hash.digest('hex') !== listed.sha256) throw new BundleError('payload_mismatch', `payload ${name} changed while it was read`);
  };
  try {
    await readTar(createReadStream(path, { highWaterMark: 1 << 20 }), member);
  } catch (e) {
    throw e instanceof TarError ? new BundleError(e.code, e.message) : e;
  }
  if (!found) throw new BundleError('missing_payload', `payload ${name} is listed in the manifest but missing`);
  return count;
}

/**
 * Reads an extracted NDJSON payload synchronously, line by line, in bounded memory: applying
 * runs inside one SQLite transaction, which cannot wait on a stream.
 */
/** The longest line a response payload may hold (an entitlement snapshot of a VA with thousands of lines fits). */
export const MAX_RESPONSE_LINE = 16 << 20;

export function* readLinesSync(file: string, maxLine = MAX_RESPONSE_LINE): Generator<string> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const decoder = new StringDecoder('utf8'); // a character split across two reads stays whole
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const text = rest + decoder.write(buf.subarray(0, n));
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const l of lines) {
        if (l.length > maxLine) throw new BundleError('malformed_payload', `a line of ${file.split('/').pop()} is longer than ${maxLine} characters`);
        if (l) yield l;
      }
      // A line still open must not grow without bound (a 600 MiB line once took 3.7 GB).
      if (rest.length > maxLine) throw new BundleError('malformed_payload', `a line of ${file.split('/').pop()} is longer than ${maxLine} characters`);
    }
    if (rest) yield rest;
  } finally {
    closeSync(fd);
  }
}
