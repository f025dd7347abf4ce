import cliProgress from 'cli-progress';
import type { ProgressEvent } from '../shared/progress.js';

/**
 * How long work shows how far it has got: a redrawn bar on a terminal, a plain line now and then
 * where stderr is a file or a pipe (a log, a CI job, systemd), nothing with --quiet. Progress
 * always goes to stderr: stdout carries the result, which scripts parse (--json).
 */
export type ProgressMode = 'tty' | 'plain' | 'quiet';

export interface ProgressOptions {
  /** What the work is, at the start of each line: "export", "import". */
  label: string;
  /** What is counted: "reports", "ACK lines", "devices". */
  unit: string;
  /** Where progress is written: process.stderr unless a test gives another. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  quiet?: boolean;
  /** Plain mode: a line at most this often (and at each tenth of the total). */
  intervalMs?: number;
  /** The clock, for the rate and the plain lines' pacing. */
  now?: () => number;
}

export interface Progress {
  readonly mode: ProgressMode;
  /** How far the work has got; a phase change ("verify", "apply") may bring a new total. */
  update(p: ProgressEvent): void;
  /** Ends the bar (or prints the last plain line). Safe to call twice. */
  stop(): void;
}

/** The mode a command's progress takes: --quiet wins, then whether stderr is a terminal. */
export function progressMode(stream: { isTTY?: boolean }, quiet: boolean | undefined): ProgressMode {
  if (quiet) return 'quiet';
  return stream.isTTY ? 'tty' : 'plain';
}

/** One line of progress, as the plain mode prints it and the bar shows after its bar. */
export function progressLine(label: string, p: ProgressEvent, elapsedMs: number, unit: string): string {
  const what = p.unit ?? unit;
  const counts = p.total !== null && p.total !== undefined && p.total > 0
    ? `${p.done}/${p.total} ${what} (${Math.min(100, Math.floor((p.done / p.total) * 100))}%)`
    : `${p.done} ${what}`;
  return `${label}${p.phase ? ` ${p.phase}` : ''}: ${counts}, ${rate(p.done, elapsedMs)}/s`;
}

function rate(done: number, elapsedMs: number): string {
  const r = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  return r >= 100 ? String(Math.round(r)) : r.toFixed(1);
}

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const mode = progressMode(stream, o.quiet);
  if (mode === 'quiet') return { mode, update: () => {}, stop: () => {} };
  return mode === 'tty' ? barProgress(o, stream) : plainProgress(o, stream);
}

function plainProgress(o: ProgressOptions, stream: NodeJS.WritableStream): Progress {
  const now = o.now ?? Date.now;
  const interval = o.intervalMs ?? 2000;
  const started = now();
  let last: ProgressEvent | null = null;
  let printed: { at: number; tenth: number; phase: string | undefined; line: string; event: ProgressEvent } | null = null;
  let stopped = false;
  const print = (p: ProgressEvent) => {
    const line = progressLine(o.label, p, now() - started, o.unit);
    if (line === printed?.line) return;
    stream.write(line + '\n');
    printed = { at: now(), tenth: tenth(p), phase: p.phase, line, event: p };
  };
  return {
    mode: 'plain',
    update(p) {
      if (stopped) return;
      last = p;
      // A new phase, a new tenth of the total, or the interval gone by: the reader of a log
      // sees movement without a line per update.
      if (!printed || p.phase !== printed.phase || tenth(p) > printed.tenth || now() - printed.at >= interval) print(p);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      // The last update, unless it was the last line printed (its rate would differ, not its count).
      if (last && last !== printed?.event) print(last);
    },
  };
}

const tenth = (p: ProgressEvent) => (p.total ? Math.floor((p.done / p.total) * 10) : -1);

function barProgress(o: ProgressOptions, stream: NodeJS.WritableStream): Progress {
  const now = o.now ?? Date.now;
  const started = now();
  let current: ProgressEvent = { done: 0, total: null };
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WriteStream,
      hideCursor: true,
      clearOnComplete: false,
      // Counts and rate in the same words as the plain lines; the bar only where a total is known.
      format: (options, params) => {
        const line = progressLine(o.label, current, now() - started, o.unit);
        if (!current.total) return line;
        const size = options.barsize ?? 30;
        const full = Math.round(params.progress * size);
        return `${(options.barCompleteString ?? '').slice(0, full)}${(options.barIncompleteString ?? '').slice(0, size - full)} ${line}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  let stopped = false;
  return {
    mode: 'tty',
    update(p) {
      if (stopped) return;
      current = p;
      const total = Math.max(p.total ?? 0, p.done, 1);
      if (!running) {
        bar.start(total, p.done);
        running = true;
      } else {
        bar.setTotal(total);
        bar.update(p.done);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (running) bar.stop();
    },
  };
}

/** The option of every command that shows progress: results are still printed, progress is not. */
export const quietOption = { quiet: { type: 'boolean', short: 'q' } } as const;

/** The progress of a command, as its --quiet asks; on stderr, whatever stdout carries. */
export function commandProgress(ctx: { values: Record<string, string | boolean | undefined> }, label: string, unit: string): Progress {
  return createProgress({ label, unit, quiet: Boolean(ctx.values.quiet) });
}

/** Runs `fn` with a progress display, always ending it (a bar left running holds the terminal and the process). */
export async function withProgress<T>(progress: Progress, fn: (p: Progress) => Promise<T>): Promise<T> {
  try {
    return await fn(progress);
  } finally {
    progress.stop();
  }
}
