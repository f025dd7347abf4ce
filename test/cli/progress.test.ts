import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, progressMode } from '../../src/cli/progress.js';
import { throttled, type ProgressEvent } from '../../src/shared/progress.js';

/** A real stream that records what is written, a terminal or not as isTTY says. */
function stream(isTTY: boolean): PassThrough & { isTTY: boolean; text: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; columns: number; text: () => string };
  s.isTTY = isTTY;
  s.columns = 120;
  let out = '';
  s.on('data', (c: Buffer) => (out += c.toString()));
  s.text = () => out;
  return s;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('progress on the command line', () => {
  it('picks a bar for a terminal, plain lines for a pipe or a file, and nothing with --quiet', () => {
    expect(progressMode(stream(true), false)).toBe('tty');
    expect(progressMode(stream(false), false)).toBe('plain');
    expect(progressMode(stream(true), true)).toBe('quiet');
    expect(progressMode(stream(false), true)).toBe('quiet');
    expect(createProgress({ label: 'x', unit: 'y', stream: stream(true) }).mode).toBe('tty');
    expect(createProgress({ label: 'x', unit: 'y', stream: stream(false) }).mode).toBe('plain');
  });

  it('prints plain lines with the counts and the rate, every tenth or interval, not at every update', async () => {
    const s = stream(false);
    let t = 0;
    const p = createProgress({ label: 'export', unit: 'reports', stream: s, now: () => t, intervalMs: 2000 });
    for (let done = 0; done <= 1000; done += 10) {
      t += 10; // 1000 reports a second
      p.update({ done, total: 1000 });
    }
    p.stop();
    await tick();
    const lines = s.text().trim().split('\n');
    // The first update, one per tenth, and the last at stop (deduplicated with the 100% line).
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(lines.length).toBeLessThanOrEqual(12);
    expect(lines[0]).toMatch(/^export: 0\/1000 reports \(0%\), 0\.0\/s$/);
    expect(lines.at(-1)).toMatch(/^export: 1000\/1000 reports \(100%\), (99\d|1\d{3})\/s$/);
    expect(s.text()).not.toContain('\x1b');
  });

  it('does not print the last count again at stop when it was already printed, though its rate has changed since', async () => {
    const s = stream(false);
    let t = 0;
    const p = createProgress({ label: 'process', unit: 'reports', stream: s, now: () => t, intervalMs: 2000 });
    p.update({ done: 0, total: 500 });
    t += 1000;
    p.update({ done: 500, total: 500 });
    t += 700; // the command's own work after the last count (writing the response)
    p.stop();
    await tick();
    const lines = s.text().trim().split('\n');
    expect(lines.filter((l) => l.startsWith('process: 500/500'))).toHaveLength(1);
  });

  it('prints a plain line at each interval where the total is unknown, and at each new phase', async () => {
    const s = stream(false);
    let t = 0;
    const p = createProgress({ label: 'import', unit: 'ACK lines', stream: s, now: () => t, intervalMs: 2000 });
    p.update({ phase: 'verify', done: 0, total: null });
    for (let i = 1; i <= 100; i++) {
      t += 100;
      p.update({ phase: 'check', done: i * 5, total: null });
    }
    p.stop();
    await tick();
    const lines = s.text().trim().split('\n');
    expect(lines[0]).toBe('import verify: 0 ACK lines, 0.0/s');
    expect(lines[1]).toMatch(/^import check: 5 ACK lines, /);
    // 10 s of work at one line per 2 s, plus the phase lines and the last.
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(lines.length).toBeLessThanOrEqual(9);
    expect(lines.at(-1)).toMatch(/^import check: 500 ACK lines, 50\.0\/s$/);
  });

  it('draws a bar with the counts and the rate on a terminal, and ends it on stop', async () => {
    const s = stream(true);
    let t = 0;
    const p = createProgress({ label: 'export', unit: 'reports', stream: s, now: () => t });
    t = 1000;
    p.update({ done: 250, total: 1000 });
    t = 2000;
    p.update({ done: 1000, total: 1000 });
    p.stop();
    await tick();
    const out = s.text();
    expect(out).toContain('\x1b'); // drawn with terminal controls: cursor moves, line clears
    expect(out).toMatch(/█+░* export: 250\/1000 reports \(25%\), 250\/s/);
    expect(out).toContain('export: 1000/1000 reports (100%), 500/s');
  });

  it('writes nothing at all with --quiet, on a terminal or not', async () => {
    for (const tty of [true, false]) {
      const s = stream(tty);
      const p = createProgress({ label: 'export', unit: 'reports', stream: s, quiet: true });
      p.update({ done: 1, total: 2 });
      p.stop();
      await tick();
      expect(s.text()).toBe('');
    }
  });

  it('throttles a service\'s events but passes every new phase and the last one held', () => {
    const seen: ProgressEvent[] = [];
    let t = 0;
    const f = throttled((p) => seen.push(p), 200, () => t);
    for (let i = 0; i < 100; i++) {
      t += 10;
      f({ phase: 'apply', done: i, total: 100 });
    }
    f({ phase: 'finish', done: 0, total: null });
    f({ phase: 'finish', done: 1, total: null });
    f.flush();
    expect(seen.length).toBeLessThan(10);
    expect(seen.filter((p) => p.phase === 'finish').map((p) => p.done)).toEqual([0, 1]);
  });
});
