import { Worker } from 'node:worker_threads';
import { verifyWith } from '../shared/ed25519.js';
import { KeyCache } from './key-cache.js';

/** Checks device signatures: the request path's one expensive step (about 130 µs each here). */
export interface SignatureVerifier {
  /** True if `signatureB64` is the ed25519 signature of `data` by the raw base64 key. */
  verify(publicKeyB64: string, signatureB64: string, data: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Verifies on the calling thread: for tests, and where no worker can run. */
export function inlineVerifier(): SignatureVerifier {
  const keys = new KeyCache();
  return {
    verify: (key, sig, data) => Promise.resolve(verifyOne(keys, key, sig, data)),
    close: () => Promise.resolve(),
  };
}

export function verifyOne(keys: KeyCache, publicKeyB64: string, signatureB64: string, data: string): boolean {
  try {
    return verifyWith(keys.get(publicKeyB64), data, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false; // a key that is not 32 bytes of base64 verifies nothing
  }
}

type Pending = { key: string; sig: string; data: string; resolve: (ok: boolean) => void };

/**
 * Verifies on worker threads, so that the main thread (HTTP, validation, SQLite, the group
 * commit) and the signature checks use two cores. The requests of one event-loop turn travel
 * as one message: a round trip costs a few microseconds a request, against the 130 µs the
 * main thread no longer spends. If a worker fails, its batch and every later one are
 * verified inline: a broken pool slows the collector down, it never refuses a good device.
 */
export class PooledVerifier implements SignatureVerifier {
  private queue: Pending[] = [];
  private scheduled = false;
  private next = 0;
  private seq = 0;
  private broken = false;
  private readonly inline = new KeyCache();
  private readonly workers: { worker: Worker; batches: Map<number, Pending[]> }[];

  constructor(workerUrl: URL, threads: number, private onFailure: (e: Error) => void) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => {
      // Its own small heap: it holds parsed keys and the strings of one batch, nothing more.
      const worker = new Worker(workerUrl, { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 } });
      worker.unref();
      const slot = { worker, batches: new Map<number, Pending[]>() };
      worker.on('message', (m: { id: number; results: Uint8Array }) => {
        const batch = slot.batches.get(m.id);
        slot.batches.delete(m.id);
        batch?.forEach((p, i) => p.resolve(m.results[i] === 1));
      });
      const fail = (e: Error) => this.fail(slot.batches, e);
      worker.on('error', fail);
      worker.on('exit', (code) => code !== 0 && fail(new Error(`the signature worker stopped with code ${code}`)));
      return slot;
    });
  }

  verify(key: string, sig: string, data: string): Promise<boolean> {
    if (this.broken) return Promise.resolve(verifyOne(this.inline, key, sig, data));
    return new Promise((resolve) => {
      this.queue.push({ key, sig, data, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    if (this.broken) return this.settleInline(batch);
    const slot = this.workers[this.next++ % this.workers.length]!;
    const id = ++this.seq;
    slot.batches.set(id, batch);
    slot.worker.postMessage({ id, items: batch.map((p) => [p.key, p.sig, p.data]) });
  }

  private fail(batches: Map<number, Pending[]>, e: Error): void {
    if (!this.broken) this.onFailure(e);
    this.broken = true;
    for (const batch of batches.values()) this.settleInline(batch);
    batches.clear();
  }

  private settleInline(batch: Pending[]): void {
    for (const p of batch) p.resolve(verifyOne(this.inline, p.key, p.sig, p.data));
  }

  async close(): Promise<void> {
    this.broken = true; // anything still arriving is verified inline
    await Promise.all(this.workers.map((s) => s.worker.terminate()));
    for (const s of this.workers) this.settleInline([...s.batches.values()].flat());
  }
}
