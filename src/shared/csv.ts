import type { UsageHistoryList } from '../history/service.js';
import { safeCell } from '../cli/safe-text.js';

/**
 * RFC 4180: a field holding a comma, a quote or a line break is quoted (license tags hold
 * commas). A text field that a spreadsheet would run as a formula (= + - @ first) is prefixed
 * with an apostrophe, since tags and names come from devices and operators; a control
 * character is shown escaped, as in every other output (see safe-text.ts).
 */
export function csvField(v: string | number | boolean | null): string {
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return String(v);
  let s = safeCell(v ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record, with the line break RFC 4180 ends records with. */
export const csvLine = (values: (string | number | boolean | null)[]): string => values.map(csvField).join(',') + '\r\n';

/** The usage history as CSV with a header line; owned is "unlimited" where it is. */
export function historyCsv(r: UsageHistoryList): string {
  let out = csvLine(['day', 'va_id', 'va_name', 'tag', 'in_use', 'owned']);
  for (const d of r.items) out += csvLine([d.day, r.vaId, r.vaName, d.tag, d.inUse, d.owned ?? 'unlimited']);
  return out;
}
