import { z } from 'zod';
import type { Severity } from '../alerts/repository.js';
import type { AlertChange } from '../alerts/service.js';

export type Channel = 'email' | 'syslog' | 'webhook';
export const CHANNELS: readonly Channel[] = ['email', 'syslog', 'webhook'];

export const SEVERITIES = ['info', 'warning', 'critical'] as const;

/** Which alerts a sink or a subscriber is told of. */
export interface Filter {
  severities: Severity[];
  /** null: every VA, and the alerts about no VA (clock, sync); a list: alerts about those VAs only. */
  vaIds: string[] | null;
  /** null: every kind (sinks only; a subscriber hears every kind). */
  kinds: string[] | null;
}

export const filterSchema = z.strictObject({
  severities: z.array(z.enum(SEVERITIES)).min(1, 'at least one severity: info, warning, critical').max(3).default([...SEVERITIES]),
  vaIds: z.array(z.string().min(1).max(100)).min(1, 'at least one VA id, or null for every VA').max(1000).nullable().default(null),
  kinds: z.array(z.string().regex(/^[a-z_]{1,50}$/, 'an alert kind, such as shortage or device_silent')).min(1).max(100).nullable().default(null),
});

export function matches(f: Filter, c: Pick<AlertChange, 'severity' | 'vaId' | 'kind'>): boolean {
  if (!f.severities.includes(c.severity)) return false;
  if (f.kinds && !f.kinds.includes(c.kind)) return false;
  if (f.vaIds) return c.vaId !== null && f.vaIds.includes(c.vaId);
  return true;
}
