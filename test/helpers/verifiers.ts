import type { SignatureVerifier } from '../../src/device-api/verifier.js';

/**
 * Wraps a real verifier so a test can hold signature checks open: the inner verifier (the
 * worker pool) does the check at once, but its answer is kept back until release(). An
 * operator action taken meanwhile lands exactly "while the signature is being checked".
 */
export class HeldVerifier implements SignatureVerifier {
  private toHold = 0;
  private held: (() => void)[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(private inner: SignatureVerifier) {}

  /** Holds the next n checks that start (all of them by default), until released. */
  hold(n = Infinity): void {
    this.toHold = n;
  }

  /** Resolves once n checks are held. */
  entered(n = 1): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ n, resolve });
      this.wake();
    });
  }

  /** Lets the first n held checks answer (all by default), in the order they arrived; stops holding. */
  release(n = Infinity): void {
    this.toHold = 0;
    for (const go of this.held.splice(0, n)) go();
  }

  async verify(key: string, sig: string, data: string): Promise<boolean> {
    if (this.toHold <= 0) return this.inner.verify(key, sig, data);
    this.toHold--;
    const ok = await this.inner.verify(key, sig, data);
    await new Promise<void>((resolve) => {
      this.held.push(resolve);
      this.wake();
    });
    return ok;
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => (this.held.length >= w.n ? (w.resolve(), false) : true));
  }

  close(): Promise<void> {
    this.release();
    return this.inner.close();
  }
}

/**
 * Wraps a real verifier so each check answers after a delay drawn from `next` (ms), as a busy
 * pool would: a property run draws them from its own generated values.
 */
export class DelayedVerifier implements SignatureVerifier {
  calls = 0;
  constructor(
    private inner: SignatureVerifier,
    public next: () => number,
  ) {}

  async verify(key: string, sig: string, data: string): Promise<boolean> {
    this.calls++;
    const ok = await this.inner.verify(key, sig, data);
    const ms = this.next();
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return ok;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
