import { safeCell } from './safe-text.js';

/** Prints rows as an aligned text table; columns are [header, value-getter]. */
export function table<T>(rows: T[], columns: [string, (r: T) => unknown][]): string {
  const cells = rows.map((r) => columns.map(([, get]) => text(get(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map(([h]) => h.toUpperCase())), ...cells.map(line)].join('\n');
}

function text(v: unknown): string {
  if (v === null || v === undefined) return '-';
  return safeCell(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

export const shortTime = (iso: string | null | undefined) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');
