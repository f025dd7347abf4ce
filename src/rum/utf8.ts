import { AppError } from '../shared/errors.js';
import type { Slicer } from './slicer.js';

/** 1 MiB decodes in a few milliseconds: a slice of work that never holds the event loop long. */
const CHUNK = 1 << 20;

/**
 * Decodes a RUM file as UTF-8 or refuses it, naming the byte where it stops being UTF-8. Never
 * replaces a bad byte: the stored originals must be the file's bytes, and a replacement
 * character would change them (and their hash) silently. A byte order mark is kept, for the
 * same reason; the scanner skips it.
 */
export async function decodeUtf8(bytes: Uint8Array, slicer: Slicer): Promise<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const parts: string[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK) {
    try {
      parts.push(decoder.decode(bytes.subarray(at, at + CHUNK), { stream: at + CHUNK < bytes.length }));
    } catch {
      throw notUtf8(bytes, invalidOffset(bytes, at));
    }
    await slicer.check();
  }
  return parts.join('');
}

function notUtf8(bytes: Uint8Array, at: number): AppError {
  const b = bytes[at];
  const what = b === undefined ? 'the file ends inside a character' : `byte ${at} (0x${b.toString(16).padStart(2, '0')}) does not begin or continue a character`;
  return new AppError(400, 'invalid_utf8', `the file is not valid UTF-8: ${what}; nothing was imported`, { byteOffset: Math.min(at, bytes.length) });
}

/**
 * The offset of the first byte that is not part of a well-formed UTF-8 sequence (the lead byte
 * of a broken sequence), looking from the character that straddles `chunkStart`; everything
 * before decoded, so the scan is at most a chunk long.
 */
export function invalidOffset(bytes: Uint8Array, chunkStart: number): number {
  let i = chunkStart;
  for (let back = 0; back < 3 && i > 0 && (bytes[i]! & 0xc0) === 0x80; back++) i--;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // beyond U+10FFFF
    } else return i;
    for (let k = 1; k <= more; k++) {
      const d = bytes[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += more + 1;
  }
  return bytes.length;
}
