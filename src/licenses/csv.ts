import { toIso } from '../shared/clock.js';
import { csvLine } from '../shared/csv.js';
import type { VaCompliance } from './service.js';
import type { EntitlementRow } from './entitlements.js';

/** A line's local labels, and (with a label filter) whether it carries every label asked for. */
export interface LineLabels {
  names: (lineId: string) => string[];
  /** Undefined: no label filter. */
  wanted?: (lineId: string) => boolean;
}

/**
 * Per VA and tag, a row for each entitlement line (a tag without lines gets one row with the
 * line columns empty), each carrying the tag's figures, as a license portal's export does.
 * Filtered by label, only the lines carrying the labels are rows.
 */
export function* licensesCsv(vas: VaCompliance[], linesOf: (vaId: string) => EntitlementRow[], now: number, labels: LineLabels): Generator<string> {
  yield csvLine([
    'va_id', 'va_name', 'tag', 'display_name', 'status', 'owned', 'in_use', 'available', 'short', 'devices',
    'line_id', 'line_kind', 'line_quantity', 'line_starts_at', 'line_ends_at', 'line_valid_now', 'line_labels',
  ]);
  for (const va of vas) {
    const lines = linesOf(va.vaId);
    for (const t of va.tags) {
      const tagFigures = [
        va.vaId, va.vaName, t.tag, t.displayName, t.status, t.owned ?? 'unlimited', t.inUse,
        t.owned === null ? 'unlimited' : Math.max(0, t.owned - t.inUse), t.short, t.devices,
      ];
      const own = lines.filter((l) => l.tag === t.tag && (!labels.wanted || labels.wanted(l.id)));
      if (!own.length && !labels.wanted) yield csvLine([...tagFigures, null, null, null, null, null, null, null]);
      for (const l of own) {
        const valid = l.starts_at <= now && (l.ends_at === null || l.ends_at > now);
        yield csvLine([...tagFigures, l.id, l.kind, l.quantity, toIso(l.starts_at), toIso(l.ends_at), valid, labels.names(l.id).join('; ')]);
      }
    }
  }
}
