import type { EntitlementRow } from './entitlements.js';

export type ComplianceStatus = 'in_compliance' | 'shortage' | 'expired' | 'not_authorized';

export interface TagCompliance {
  tag: string;
  displayName: string;
  /** What the VA owns now; null means unlimited. */
  owned: number | null;
  inUse: number;
  devices: number;
  status: ComplianceStatus;
  /** Shortfall (in use minus owned) when short, else 0. */
  short: number;
  lines: { total: number; validNow: number };
}

/**
 * The status rules, as a pure function of one VA's usage and lines at a given time:
 * owned now is the sum of the lines valid now (unlimited if any valid line is unlimited).
 */
export function tagCompliance(tag: string, inUse: number, devices: number, lines: EntitlementRow[], now: number): TagCompliance {
  const valid = lines.filter((l) => l.starts_at <= now && (l.ends_at === null || l.ends_at > now));
  const unlimited = valid.some((l) => l.kind === 'unlimited');
  const owned = unlimited ? null : valid.reduce((s, l) => s + l.quantity, 0);
  let status: ComplianceStatus;
  if (lines.length === 0) status = inUse > 0 ? 'not_authorized' : 'in_compliance';
  else if (valid.length === 0) status = inUse > 0 ? 'expired' : 'in_compliance';
  else status = owned !== null && inUse > owned ? 'shortage' : 'in_compliance';
  return {
    tag,
    displayName: lines[0]?.display_name ?? tag,
    owned,
    inUse,
    devices,
    status,
    short: owned !== null && inUse > owned ? inUse - owned : 0,
    lines: { total: lines.length, validNow: valid.length },
  };
}
