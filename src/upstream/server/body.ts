import type { IncomingMessage } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../shared/errors.js';

export const tooLarge = (max: number) => new AppError(413, 'too_large', `a bundle posted here may be at most ${max} bytes (upstream.maxBundleBytes)`);

/**
 * Streams a request body to a new file under `dir`, never holding more than a chunk in
 * memory, and syncs it: a bundle accepted from it survives a crash. Past `max` bytes the
 * body is cut and the file removed. Resolves with the file's path.
 */
export async function receiveToFile(req: IncomingMessage, dir: string, max: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${randomUUID()}.part`);
  const fh = await open(file, 'wx', 0o600);
  let ok = false;
  try {
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) throw tooLarge(max);
      await fh.write(c);
    }
    if (!req.complete) throw new AppError(400, 'incomplete_body', 'the request body ended before its declared length');
    await fh.sync();
    ok = true;
    return file;
  } finally {
    await fh.close();
    if (!ok) rmSync(file, { force: true });
  }
}
