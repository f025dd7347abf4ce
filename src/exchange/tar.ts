import { createReadStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * A strict ustar tar, enough for bundles and no more. Writing: regular files with plain
 * names. Reading refuses everything a bundle never holds and an attacker could use: links,
 * devices, directories, pax and GNU extended headers (which can override a name), absolute
 * or ".." paths, bad checksums, and a file that ends early.
 */
const BLOCK = 512;

export class TarError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarHeader(name: string, size: number, mtimeSec: number): Buffer {
  if (Buffer.byteLength(name) > 100 || !/^[A-Za-z0-9._-]+$/.test(name)) throw new TarError('unsafe_path', `bad member name ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(mtimeSec, 12), 136);
  h.write('        ', 148); // checksum is computed with its own field as spaces
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/** Appends one member from a buffer or a file, in order. Ends with two zero blocks. */
export class TarWriter {
  constructor(
    private out: WriteStream,
    private mtimeSec: number,
  ) {}

  private failed: Error | undefined;
  private write(chunk: Buffer): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.out.listenerCount('error') === 0) this.out.on('error', (e) => (this.failed = e));
    if (this.out.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => (this.out.off('close', onClose), resolve());
      const onClose = () => (this.out.off('drain', onDrain), reject(this.failed ?? new Error('the bundle file closed early')));
      this.out.once('drain', onDrain).once('close', onClose);
    });
  }

  async addBuffer(name: string, data: Buffer): Promise<void> {
    await this.write(tarHeader(name, data.length, this.mtimeSec));
    await this.write(data);
    await this.write(Buffer.alloc(padding(data.length)));
  }

  async addFile(name: string, path: string, size: number): Promise<void> {
    await this.write(tarHeader(name, size, this.mtimeSec));
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await this.write(chunk as Buffer);
    await this.write(Buffer.alloc(padding(size)));
  }

  async finish(): Promise<void> {
    await this.write(Buffer.alloc(BLOCK * 2));
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

export interface TarEntry {
  name: string;
  size: number;
}

function parseOctal(buf: Buffer, field: string): number {
  const text = buf.toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]{1,12}$/.test(text)) throw new TarError('malformed_archive', `the ${field} field of a tar header is not an octal number`);
  return parseInt(text, 8);
}

function parseHeader(h: Buffer): TarEntry {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  if (parseOctal(h.subarray(148, 156), 'checksum') !== sum) throw new TarError('malformed_archive', 'a tar header checksum does not match: the file is damaged');
  const type = String.fromCharCode(h[156]!);
  if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
    throw new TarError('extended_header', 'the archive holds an extended header, which could override a member name; bundles never do');
  }
  if (type !== '0' && type !== '\0') throw new TarError('not_regular_file', `a member is not a regular file (tar type "${type}")`);
  const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
  const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
  const full = prefix ? `${prefix}/${name}` : name;
  if (full.startsWith('/') || full.split('/').includes('..')) throw new TarError('unsafe_path', `a member has an unsafe path: ${JSON.stringify(full)}`);
  if (full.includes('/') || !/^[A-Za-z0-9._-]+$/.test(full)) throw new TarError('unsafe_path', `a member has a name a bundle never uses: ${JSON.stringify(full)}`);
  return { name: full, size: parseOctal(h.subarray(124, 136), 'size') };
}

/**
 * GNU and BSD tar write in 10,240-byte records (blocking factor 20) and pad the last one with
 * zeros; that padding, and nothing else, may follow the end-of-archive marker.
 */
export const RECORD = 20 * BLOCK;

/**
 * Reads a tar as a stream of members: for each, `onEntry` receives its header and an async
 * iterable of its bytes, which it must consume. Throws TarError on anything unexpected,
 * including a file that ends before its last member or without the end-of-archive blocks,
 * and any byte after those blocks other than zero padding to the end of their record: `tar -i`
 * reads on past the marker, so a reviewer could list members Outpost never looked at.
 * The input is destroyed on every way out, so a refused file leaves no descriptor open.
 */
export async function readTar(
  input: Readable,
  onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  try {
    await readMembers(input, onEntry);
  } finally {
    input.destroy();
  }
}

async function readMembers(input: Readable, onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  let consumed = 0; // bytes of the file before buf
  const take = (n: number): Buffer => {
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    consumed += n;
    return out;
  };
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !done) {
      const r = await it.next();
      if (r.done) done = true;
      else buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
    }
    return buf.length >= n;
  };
  for (;;) {
    if (!(await fill(BLOCK))) throw new TarError('truncated', 'the file ends before the end-of-archive marker: it is truncated');
    const header = take(BLOCK);
    if (header.every((b) => b === 0)) {
      if (!(await fill(BLOCK))) throw new TarError('truncated', 'the end-of-archive marker is incomplete: the file is truncated');
      if (!take(BLOCK).every((b) => b === 0)) {
        throw new TarError('trailing_data', `a zero block at byte ${consumed - 2 * BLOCK} is followed by data: an end-of-archive marker is two zero blocks, and nothing may follow it`);
      }
      // Zero padding to the end of the marker's record, and nothing else.
      const markerEnd = consumed;
      const allowed = Math.ceil(markerEnd / RECORD) * RECORD - markerEnd;
      while (buf.length || (await fill(1))) {
        const chunk = take(buf.length);
        const nonZero = chunk.findIndex((b) => b !== 0);
        if (nonZero !== -1) {
          throw new TarError('trailing_data', `the archive has data at byte ${consumed - chunk.length + nonZero}, after its end-of-archive marker (which ends at byte ${markerEnd}); only zero padding may follow the marker`);
        }
        if (consumed - markerEnd > allowed) {
          throw new TarError('trailing_data', `the archive has more than ${allowed} bytes of zeros after its end-of-archive marker; only padding to the end of its ${RECORD}-byte record may follow the marker`);
        }
      }
      return;
    }
    const entry = parseHeader(header);
    let remaining = entry.size;
    async function* body(): AsyncGenerator<Buffer> {
      while (remaining > 0) {
        if (!buf.length && !(await fill(1))) throw new TarError('truncated', `member ${entry.name} ends early: the file is truncated`);
        const chunk = take(Math.min(remaining, buf.length));
        remaining -= chunk.length;
        yield chunk;
      }
    }
    await onEntry(entry, body());
    while (remaining > 0) for await (const _ of body()); // drain what the consumer left
    const pad = padding(entry.size);
    if (pad) {
      if (!(await fill(pad))) throw new TarError('truncated', 'the file is truncated');
      take(pad);
    }
  }
}
