/**
 * Device-supplied text (hostnames, serials, tags) reaches the operator's terminal. A control
 * character in it (ESC starts a terminal escape sequence, CR overwrites a line, BEL rings)
 * or a bidirectional override (which reorders what is shown) could hide or forge what is
 * printed, so every such character is shown as a visible escape instead.
 */
// C0 controls but tab and newline, DEL and the C1 controls, and the bidi embeddings, overrides and isolates.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_IN_CELL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string) => {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** For text output: line breaks and tabs are the printer's own and stay; the rest is shown escaped. */
export const safeText = (s: string): string => s.replace(UNSAFE, visible);

/** For one table cell or one value on a line: a line break in a value would forge a row. */
export const safeCell = (s: string): string => s.replace(UNSAFE_IN_CELL, visible);

/** JSON escapes C0 controls itself; DEL, C1 and bidi characters it leaves raw, so they are escaped here (still valid JSON). */
export const safeJson = (json: string): string =>
  json.replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
