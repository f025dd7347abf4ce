import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tarHeader } from '../../src/exchange/tar.js';

/** The members of a tar as they are, for tests that take a bundle apart and put it back wrong. */
export interface Member {
  name: string;
  data: Buffer;
  type?: string; // tar type flag; '0' a regular file
}

export function members(file: string): Member[] {
  const buf = readFileSync(file);
  const out: Member[] = [];
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    out.push({ name, data: Buffer.from(buf.subarray(off + 512, off + 512 + size)), type: String.fromCharCode(h[156]!) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The bytes of a tar holding `list`, its end-of-archive marker included; any name, any type flag. */
export function tarBytes(list: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of list) {
    const h = tarHeader('x', m.data.length, 1_700_000_000);
    h.fill(0, 0, 100);
    h.write(m.name, 0, 'utf8');
    h.write(m.type ?? '0', 156);
    h.write('        ', 148);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes members as a tar, letting a test set any name (absolute, "..") and any type flag. */
export function writeTar(file: string, list: Member[]): void {
  writeFileSync(file, tarBytes(list));
}

/**
 * Appends bytes after a tar's end-of-archive marker, leaving the signed bundle before it as it
 * was: `tar -i` (ignore zero blocks) reads on past the marker, a strict reader must not.
 */
export function appendAfterMarker(file: string, bytes: Buffer): void {
  appendFileSync(file, bytes);
}

/** Pads a tar with zeros to the end of its 10,240-byte record, as GNU and BSD tar write it; `extra` zeros beyond. */
export function padToRecord(file: string, extra = 0): void {
  const size = statSync(file).size;
  appendFileSync(file, Buffer.alloc((10_240 - (size % 10_240)) % 10_240 + extra));
}

/**
 * Rewrites one payload's NDJSON lines, makes the manifest agree with the new payload (size
 * and SHA-256) and signs it again with the given key: a bundle only reading its records can
 * find fault with.
 */
export function rewritePayload(file: string, out: string, name: string, edit: (lines: string[]) => string[], sign: (manifest: Buffer) => Buffer): void {
  const ms = members(file);
  const payload = ms.find((m) => m.name === name)!;
  payload.data = gzipSync(edit(gunzipSync(payload.data).toString('utf8').trimEnd().split('\n')).join('\n') + '\n');
  const manifest = JSON.parse(ms[0]!.data.toString('utf8'));
  const listed = manifest.payloads.find((p: { name: string }) => p.name === name);
  listed.size = payload.data.length;
  listed.sha256 = createHash('sha256').update(payload.data).digest('hex');
  ms[0]!.data = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  ms[1]!.data = sign(ms[0]!.data);
  writeTar(out, ms);
}

/** Offset of a member's data in the tar. */
export function dataOffset(file: string, name: string): number {
  let off = 0;
  for (const m of members(file)) {
    if (m.name === name) return off + 512;
    off += 512 + Math.ceil(m.data.length / 512) * 512;
  }
  throw new Error(name);
}

/** Flips the lowest bit of one byte of a file in place. */
export function flipAt(file: string, offset: number): void {
  const b = readFileSync(file);
  b[offset] = b[offset]! ^ 0x01;
  writeFileSync(file, b);
}
