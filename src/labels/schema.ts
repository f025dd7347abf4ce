import { z } from 'zod';

/**
 * Letters, digits, spaces and a few marks: a name reads the same in a table, a CSV cell (where
 * a row's labels are joined with "; ") and a shell argument, and holds no control character.
 */
export const labelName = z
  .string()
  .trim()
  .min(1, 'a label name needs 1 to 64 characters')
  .max(64, 'a label name needs 1 to 64 characters')
  .regex(/^[\p{L}\p{N}][\p{L}\p{N} ._\-:/+#@&()]*$/u, 'a label name starts with a letter or digit, then letters, digits, spaces and . _ - : / + # @ & ( )');

export const labelColour = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour is #rrggbb (six hexadecimal digits)');

export const labelDescription = z.string().max(500, 'a description holds at most 500 characters');

/** `label=A&label=B`: the items carrying every one of them. */
export const labelQuery = z
  .union([z.string().min(1).max(64), z.array(z.string().min(1).max(64)).min(1).max(20)])
  .transform((v) => (Array.isArray(v) ? v : [v]));
