import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Long work on the main thread, cut into slices of at most `budgetMs` with a turn of the event
 * loop between them, so device requests are read and answered while a big file is imported.
 */
export class Slicer {
  /** How many times the work gave the event loop a turn. */
  yields = 0;
  private sliceStart = performance.now();

  constructor(private budgetMs = 10) {}

  /** Yields if this slice has used its budget. */
  async check(): Promise<void> {
    if (performance.now() - this.sliceStart >= this.budgetMs) await this.yield();
  }

  /** Yields now: between two write transactions, whatever their length. */
  async yield(): Promise<void> {
    await nextTurn();
    this.yields++;
    this.sliceStart = performance.now();
  }
}
