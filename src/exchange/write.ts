import { createWriteStream, mkdirSync, renameSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createGzip } from 'node:zlib';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BUNDLE_FORMAT, MANIFEST, SIGNATURE, formatVersionFor, type Manifest } from './manifest.js';
import { TarWriter } from './tar.js';
import { sha256hex } from '../shared/hash.js';

export interface BundleSigner {
  readonly keyId: string;
  /** Detached ed25519 signature of the exact manifest bytes. */
  sign(data: Buffer): Buffer;
}

/** Signs with an identity's current key: reads it at each use, since a rotation swaps it in place. */
export function identitySigner(identity: { fingerprint: string; signDetached(data: Buffer): Buffer }): BundleSigner {
  return {
    get keyId() {
      return identity.fingerprint;
    },
    sign: (b) => identity.signDetached(b),
  };
}

/** Ready-made NDJSON: whole lines, each ending in a newline, and how many there are. */
export class NdjsonChunk {
  constructor(
    readonly bytes: Buffer,
    readonly records: number,
  ) {}
}

export interface PayloadSource {
  name: string;
  /**
   * Records, one JSON line each, or NdjsonChunks of lines built elsewhere (by SQLite, for the
   * millions of reports of an export). An async source lets a caller read its store in chunks.
   */
  records: Iterable<unknown> | AsyncIterable<unknown>;
}

export type ManifestHeader = Omit<Manifest, 'format' | 'formatVersion' | 'signer' | 'payloads'>;

export interface WrittenBundle {
  path: string;
  manifest: Manifest;
  /** SHA-256 of the manifest bytes: the bundle's identity in the chain of answers. */
  hash: string;
  bytes: number;
}

export type ListedPayload = Manifest['payloads'][number];

/**
 * Streams each payload through gzip to a file in `dir`, taking its SHA-256, size and record
 * count on the way: memory stays flat in the number of records.
 */
export async function writePayloads(dir: string, payloads: PayloadSource[]): Promise<ListedPayload[]> {
  const listed: ListedPayload[] = [];
  for (const p of payloads) {
    const file = join(dir, p.name);
    const hash = createHash('sha256');
    let records = 0;
    const lines = Readable.from(
      (async function* () {
        let chunk: string[] = [];
        for await (const r of p.records as AsyncIterable<unknown>) {
          if (r instanceof NdjsonChunk) {
            if (chunk.length) (yield Buffer.from(chunk.join('\n') + '\n'), (chunk = []));
            records += r.records;
            yield r.bytes;
            // Let the event loop run between chunks: gzip works on the thread pool, but each
            // of its steps completes through this thread. Without this pause the two take
            // turns (reading blocks gzip, then gzip drains while reading waits) instead of
            // working at once; with it a 1M-report payload takes about a quarter less time.
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          chunk.push(JSON.stringify(r));
          records++;
          if (chunk.length === 1000) {
            yield Buffer.from(chunk.join('\n') + '\n');
            chunk = [];
          }
        }
        if (chunk.length) yield Buffer.from(chunk.join('\n') + '\n');
      })(),
      { objectMode: false, highWaterMark: 256 << 10 },
    );
    const tap = new Transform({
      transform(c: Buffer, _e, cb) {
        hash.update(c);
        cb(null, c);
      },
    });
    // Level 3: most of the size of level 6 at about twice the speed; payloads are repetitive JSON.
    // 256 KiB output chunks: fewer trips between the thread pool and this thread.
    await pipeline(lines, createGzip({ level: 3, chunkSize: 256 << 10 }), tap, createWriteStream(file, { mode: 0o600 }));
    listed.push({ name: p.name, size: statSync(file).size, records, sha256: hash.digest('hex') });
  }
  return listed;
}

/**
 * Signs the manifest as the exact bytes stored, then writes the tar: manifest first, so that
 * a reader can verify before it reads anything else, then the payload files from `dir`. The
 * bundle appears under its name only when complete.
 */
export async function assembleBundle(path: string, header: ManifestHeader, listed: ListedPayload[], dir: string, signer: BundleSigner): Promise<WrittenBundle> {
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    formatVersion: formatVersionFor(listed),
    ...header,
    signer: { algorithm: 'ed25519', keyId: signer.keyId },
    payloads: listed,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  const partial = join(dir, 'bundle.partial');
  const out = createWriteStream(partial, { mode: 0o644 });
  const tar = new TarWriter(out, Math.floor(Date.parse(manifest.createdAt) / 1000));
  await tar.addBuffer(MANIFEST, manifestBytes);
  await tar.addBuffer(SIGNATURE, signer.sign(manifestBytes));
  for (const p of listed) await tar.addFile(p.name, join(dir, p.name), p.size);
  await tar.finish();
  renameSync(partial, path);
  return { path, manifest, hash: sha256hex(manifestBytes), bytes: statSync(path).size };
}

/** Writes a whole bundle: payloads, then the signed manifest and the tar. */
export async function writeBundle(path: string, header: ManifestHeader, payloads: PayloadSource[], signer: BundleSigner): Promise<WrittenBundle> {
  mkdirSync(dirname(path), { recursive: true });
  const work = mkdtempSync(join(dirname(path), '.writing-'));
  try {
    return await assembleBundle(path, header, await writePayloads(work, payloads), work, signer);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
