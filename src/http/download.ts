import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';

/**
 * What a route answers with to be saved as a file (a CSV table, a bundle): sent as an
 * attachment, its body streamed so that 100,000 rows or a large bundle never sit in memory.
 * `body` is text made as it is read (rows of a table, page by page), or a stream of bytes.
 */
export class Download {
  constructor(
    readonly filename: string,
    readonly body: Iterable<string> | Readable,
    readonly length?: number,
  ) {}
}

/** Bytes of text gathered before a write: fewer, larger writes than one per row. */
const CHUNK_CHARS = 64 * 1024;

export async function sendDownload(res: Response, d: Download, contentType: string): Promise<void> {
  const headers = (): void => {
    res.status(200).type(contentType);
    // The names are made here from ids and dates; anything else is replaced so the header stays a plain token.
    res.setHeader('content-disposition', `attachment; filename="${d.filename.replace(/[^\w.-]/g, '_')}"`);
    if (d.length !== undefined) res.setHeader('content-length', String(d.length));
  };
  if (!(Symbol.iterator in d.body)) {
    headers();
    await pipeline(d.body, res);
    return;
  }
  const it = d.body[Symbol.iterator]();
  // The first rows are read before the headers go: a refusal (an unknown VA) still gets its status and JSON error.
  let next = it.next();
  headers();
  try {
    while (!next.done) {
      let chunk = '';
      while (!next.done && chunk.length < CHUNK_CHARS) {
        chunk += next.value;
        next = it.next();
      }
      if (res.destroyed) return;
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  } catch (e) {
    // Too late for an error answer: the body is cut short, which a client sees as a failed download.
    res.destroy(e as Error);
  } finally {
    it.return?.();
  }
}
