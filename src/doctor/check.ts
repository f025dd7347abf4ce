/** One line of `outpost doctor`: what was checked, how it stands, and what to do when it is not ok. */
export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  /** What the operator should do; set for every warn and fail. */
  fix?: string;
}

export const ok = (name: string, message: string): Check => ({ name, status: 'ok', message });
export const warn = (name: string, message: string, fix: string): Check => ({ name, status: 'warn', message, fix });
export const fail = (name: string, message: string, fix: string): Check => ({ name, status: 'fail', message, fix });

/** A warning is worth reading but nothing is wrong yet: only a failure makes the exit code non-zero. */
export const failed = (checks: Check[]): boolean => checks.some((c) => c.status === 'fail');

export function render(checks: Check[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => {
    const head = `${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.message}`;
    return c.fix ? `${head}\n${' '.repeat(w + 8)}fix: ${c.fix}` : head;
  });
  const n = (s: Check['status']) => checks.filter((c) => c.status === s).length;
  lines.push('', `${n('ok')} ok, ${n('warn')} warning(s), ${n('fail')} failure(s)`);
  return lines.join('\n');
}
