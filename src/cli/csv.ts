import type { UsageHistoryList } from '../history/service.js';
import { safeCell } from './safe-text.js';

/**
 * RFC 4180: a field holding a comma, a quote or a line break is quoted (license tags hold
 * commas). A text field that a spreadsheet would run as a formula (= + - @ first) is prefixed
 * with an apostrophe, since tags and names come from devices and operators; a control
 * character is shown escaped, as in every other output (see safe-text.ts).
 */
function field(v: string | number | null): string {
  if (typeof v === 'number') return String(v);
  let s = safeCell(v ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The usage history as CSV with a header line; owned is "unlimited" where it is. */
export function historyCsv(r: UsageHistoryList): string {
  const lines = [['day', 'va_id', 'va_name', 'tag', 'in_use', 'owned'].join(',')];
  for (const d of r.items) lines.push([d.day, r.vaId, r.vaName, d.tag, d.inUse, d.owned ?? 'unlimited'].map(field).join(','));
  return lines.join('\r\n') + '\r\n';
}
