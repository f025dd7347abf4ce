import type { z } from 'zod';
import { badRequest } from './errors.js';

/** Formats a zod path as a reader would write it: reports[3].measurements[0].count */
export function pathText(path: PropertyKey[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '');
}

/** Parses or throws one 400 that names every field that is wrong. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 20).map((i) => ({ path: pathText(i.path) || '(root)', message: i.message }));
  const first = issues[0]!;
  throw badRequest('invalid_' + what, `${what}: ${first.path}: ${first.message}`, { issues });
}
