/**
 * How far a long operation has got, as the collector's services report it and the local API
 * streams it (one object per NDJSON line): counts, never a guess of time left.
 */
export interface ProgressEvent {
  /** The step under way, where the work has several ("verify", "apply"). */
  phase?: string;
  done: number;
  /** null where the total is not known in advance. */
  total: number | null;
  /** What is counted, where it differs from the command's usual unit. */
  unit?: string;
}

export type OnProgress = (p: ProgressEvent) => void;

/**
 * Passes on at most one event per interval (and always a new phase), so a loop of a million
 * rows does not write a million lines; `flush` sends the last one held back.
 */
export function throttled(fn: OnProgress, intervalMs = 200, now: () => number = Date.now): OnProgress & { flush: () => void } {
  let last = -Infinity;
  let phase: string | undefined;
  let held: ProgressEvent | null = null;
  const send = (p: ProgressEvent) => {
    held = null;
    last = now();
    phase = p.phase;
    fn(p);
  };
  const t = (p: ProgressEvent) => (p.phase !== phase || now() - last >= intervalMs ? send(p) : void (held = p));
  return Object.assign(t, { flush: () => held && send(held) });
}
