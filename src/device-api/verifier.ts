import { Worker } from 'node:worker_threads';
import { verifyWith } from '../shared/ed25519.js';
import { KeyCache } from './key-cache.js';

/** Checks device signatures: the request path's one expensive step (about 130 µs each here). */
export interface SignatureVerifier {
  /**
   * True if `signatureB64` is the ed25519 signature of `data` by the raw base64 key. `cache`
   * false: the key is parsed for this check only (a registration's key, which anyone can pick).
   */
  verify(publicKeyB64: string, signatureB64: string, data: string, cache?: boolean): Promise<boolean>;
  close(): Promise<void>;
  /** Whether its worker threads are up (absent: it has none). */
  alive?(): boolean;
}

/** Verifies on the calling thread: for tests, and where no worker can run. */
export function inlineVerifier(): SignatureVerifier {
  const keys = new KeyCache();
  return {
    verify: (key, sig, data, cache = true) => Promise.resolve(verifyOne(keys, key, sig, data, cache)),
    close: () => Promise.resolve(),
  };
}

export function verifyOne(keys: KeyCache, publicKeyB64: string, signatureB64: string, data: string, cache = true): boolean {
  try {
    return verifyWith(cache ? keys.get(publicKeyB64) : keys.once(publicKeyB64), data, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false; // a key that is not 32 bytes of base64 verifies nothing
  }
}

type Pending = { key: string; sig: string; data: string; cache: boolean; resolve: (ok: boolean) => void };
type Slot = { worker: Worker; batches: Map<number, Pending[]> };

/** More deaths than this within RESTART_WINDOW_MS and the pool stops restarting: something is wrong with the worker itself. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/**
 * Verifies on worker threads, so that the main thread (HTTP, validation, SQLite, the group
 * commit) and the signature checks use two cores. The requests of one event-loop turn travel
 * as one message: a round trip costs a few microseconds a request, against the 130 µs the
 * main thread no longer spends. A worker that dies has its batches verified inline and is
 * replaced; only a worker that keeps dying leaves the pool checking inline for good. A broken
 * pool slows the collector down, it never refuses a good device.
 */
export class PooledVerifier implements SignatureVerifier {
  private queue: Pending[] = [];
  private scheduled = false;
  private next = 0;
  private seq = 0;
  private broken = false;
  private closing = false;
  private deaths: number[] = [];
  private readonly inline = new KeyCache();
  private readonly workers: Slot[];

  constructor(
    private readonly workerUrl: URL,
    threads: number,
    /** Told of each worker that died (with whether it was replaced), so it reaches the log. */
    private onFailure: (e: Error, replaced: boolean) => void,
  ) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => ({ worker: null as unknown as Worker, batches: new Map() }));
    this.workers.forEach((slot) => this.spawn(slot));
  }

  private spawn(slot: Slot): void {
    // Its own small heap: it holds parsed keys (bounded, see KeyCache) and the strings of one batch.
    const worker = new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 } });
    worker.unref();
    slot.worker = worker;
    worker.on('message', (m: { id: number; results: Uint8Array }) => {
      const batch = slot.batches.get(m.id);
      slot.batches.delete(m.id);
      batch?.forEach((p, i) => p.resolve(m.results[i] === 1));
    });
    let failed = false;
    const fail = (e: Error) => {
      if (failed || slot.worker !== worker) return; // 'error' is followed by 'exit': one death
      failed = true;
      this.died(slot, e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => !this.closing && fail(new Error(`the signature worker stopped with code ${code}`)));
  }

  private died(slot: Slot, e: Error): void {
    const batches = [...slot.batches.values()];
    slot.batches.clear();
    for (const batch of batches) this.settleInline(batch);
    const now = Date.now();
    this.deaths = [...this.deaths.filter((t) => now - t < RESTART_WINDOW_MS), now];
    const replace = !this.closing && this.deaths.length <= MAX_RESTARTS;
    if (!this.broken) this.onFailure(e, replace);
    if (replace) this.spawn(slot);
    else this.broken = true;
  }

  verify(key: string, sig: string, data: string, cache = true): Promise<boolean> {
    if (this.broken) return Promise.resolve(verifyOne(this.inline, key, sig, data, cache));
    return new Promise((resolve) => {
      this.queue.push({ key, sig, data, cache, resolve });
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
    slot.worker.postMessage({ id, items: batch.map((p) => [p.key, p.sig, p.data, p.cache]) });
  }

  /** False once the workers kept dying (checks went inline for good) or the pool closed. */
  alive(): boolean {
    return !this.broken;
  }

  private settleInline(batch: Pending[]): void {
    for (const p of batch) p.resolve(verifyOne(this.inline, p.key, p.sig, p.data, p.cache));
  }

  async close(): Promise<void> {
    this.closing = true;
    this.broken = true; // anything still arriving is verified inline
    await Promise.all(this.workers.map((s) => s.worker.terminate()));
    for (const s of this.workers) this.settleInline([...s.batches.values()].flat());
  }
}
