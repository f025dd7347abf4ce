import type { IncomingMessage } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../shared/errors.js';

export const tooLarge = (max: number) => new AppError(413, 'too_large', `a bundle posted here may be at most ${max} bytes (upstream.maxBundleBytes)`);

/**
 * Room for bodies still arriving, shared by every connection. Anyone who reaches the port may
 * post, and a bundle is judged by its signature only once it has arrived: without a bound,
 * a few hundred connections each starting a maximal body would fill the disk.
 */
export class UploadBudget {
  private used = 0;
  constructor(readonly max: number) {}

  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

export const BUSY_CODE = 'busy';
const busy = (b: UploadBudget) =>
  new AppError(503, BUSY_CODE, `the upstream is receiving as many bytes as it holds at once (${b.max}, upstream.maxUploadingBytes): try again shortly`);

export interface ReceiveOptions {
  max: number;
  budget: UploadBudget;
  /** The longest silence while the body arrives. */
  idleMs: number;
}

/**
 * Streams a request body to a new file under `dir`, never holding more than a chunk in
 * memory, and syncs it: a bundle accepted from it survives a crash. Past `max` bytes the
 * body is cut and the file removed; so is a body silent for `idleMs`. Its declared length is
 * taken from the budget before a byte is written (a chunked body's as it arrives) and given
 * back once the request is done with the file. Resolves with the file's path and `release`.
 */
export async function receiveToFile(req: IncomingMessage, dir: string, o: ReceiveOptions): Promise<{ file: string; release: () => void }> {
  const { max, budget } = o;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  let held = 0;
  const reserve = (n: number) => {
    if (!budget.take(n)) throw busy(budget);
    held += n;
  };
  const release = () => {
    budget.give(held);
    held = 0;
  };
  if (Number.isFinite(declared)) reserve(declared);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  let file: string | undefined;
  let ok = false;
  req.setTimeout(o.idleMs, () =>
    req.destroy(new AppError(408, 'body_timeout', `no byte of the body arrived for ${o.idleMs / 1000} s (upstream.bodyTimeoutSeconds): the upload was cut`)),
  );
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    file = join(dir, `${randomUUID()}.part`);
    fh = await open(file, 'wx', 0o600);
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) throw tooLarge(max);
      if (n > held) reserve(n - held);
      await fh.write(c);
    }
    if (!req.complete) throw new AppError(400, 'incomplete_body', 'the request body ended before its declared length');
    await fh.sync();
    ok = true;
    return { file, release };
  } finally {
    req.setTimeout(0);
    await fh?.close();
    if (!ok) {
      if (file) rmSync(file, { force: true });
      release();
    }
  }
}
