import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response, NextFunction } from 'express';
import { AppError, badRequest } from '../shared/errors.js';

/** Where a `bytes` route finds what was sent: a file, removed once the answer is sent. */
export interface UploadedFile {
  file: string;
  bytes: number;
}

const tooLarge = (limit: number, setting: string) =>
  new AppError(413, 'body_too_large', `the upload is larger than ${limit} bytes (${setting}); nothing was changed`, { limitBytes: limit, setting });

/**
 * Streams a request body of raw bytes to a private file in a fresh folder under `dir`, counting
 * as it goes: past `limit` the upload stops and is answered 413 naming the setting, its bytes
 * removed. Nothing of the body sits in memory, and express's JSON parser never sees it. The
 * folder's name starts with a dot, which the inbox and every scan of the bundle folder skip.
 */
export function bytesToFile(dir: () => string, limit: number, setting: string, name: () => string) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    // Refused before a byte is written (Node closes a connection whose body was left unread).
    if (declared > limit) return next(tooLarge(limit, setting));
    if (declared === 0) return next(badRequest('empty_upload', 'the upload is empty: send the bundle file\'s bytes as the request body'));
    const folder = mkdtempSync(join(dir(), '.upload-'));
    const file = join(folder, name());
    const remove = () => rmSync(folder, { recursive: true, force: true });
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done(bytes > limit ? tooLarge(limit, setting) : null, chunk);
      },
    });
    // The request is piped, not handed to pipeline(): refused, its rest is read and dropped
    // while the refusal is sent, rather than the connection torn down under the answer.
    const aborted = (e?: Error) => count.destroy(e ?? new Error('the connection closed'));
    req.on('error', aborted).on('aborted', aborted);
    req.pipe(count);
    try {
      await pipeline(count, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      req.unpipe(count);
      req.resume();
      remove();
      return next(e instanceof AppError ? e : badRequest('upload_incomplete', `the upload did not arrive whole (${(e as Error).message}); nothing was changed`));
    }
    req.off('error', aborted).off('aborted', aborted);
    if (bytes === 0) {
      remove();
      return next(badRequest('empty_upload', 'the upload is empty: send the bundle file\'s bytes as the request body'));
    }
    res.on('close', remove);
    req.body = { file, bytes } satisfies UploadedFile;
    next();
  };
}
