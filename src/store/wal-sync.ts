import { closeSync, fdatasync, openSync } from 'node:fs';

/**
 * Makes committed WAL frames durable from the thread pool rather than the main thread.
 * A group commit runs with synchronous=NORMAL (SQLite writes the WAL but does not fsync it);
 * this then fdatasyncs the WAL file, and only after it are the requests answered: the same
 * guarantee as synchronous=FULL (nothing acknowledged is lost to a power cut) without the
 * main thread waiting on the disk. The WAL keeps its inode while the store is open (SQLite
 * rewrites it from the start after a checkpoint and deletes it only as the last connection
 * closes, checkpointed and synced), so one descriptor serves until close().
 */
export type FileSync = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;

export class WalSync {
  private fd: number | null = null;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly walFile: string,
    /** fdatasync; the durability tests pass a wrapper that records when it ran, or fails it. */
    private readonly syncFile: FileSync = fdatasync,
  ) {}

  sync(): Promise<void> {
    // Opened on first use (again after close()): the WAL exists once anything was committed.
    try {
      this.fd ??= openSync(this.walFile, 'r');
    } catch (e) {
      return Promise.reject(e as Error); // answered as a storage failure, never thrown into the commit loop
    }
    const fd = this.fd;
    const p = new Promise<void>((resolve, reject) => this.syncFile(fd, (e) => (e ? reject(e) : resolve())));
    this.inFlight.add(p);
    const done = () => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Waits for the syncs in flight, then lets the descriptor go. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
