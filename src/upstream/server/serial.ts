/**
 * One write at a time on the upstream's connection. Counting a bundle's reports holds a
 * transaction open across awaits (the reports are read on a worker thread): any other write
 * made meanwhile on the same connection would join that transaction, and vanish with it if
 * it rolls back. Every write while the upstream serves (jobs, the operator's commands,
 * enrollment requests) runs through here, in the order it was asked for.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
