import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AlertService } from '../alerts/service.js';
import type { SyncState } from './sync-state.js';

/**
 * The alerts of connected mode: a sync overdue (counted from the last success or, before the
 * first, from when connected mode was first seen) and an upstream unreachable for too long.
 * Cleared when they no longer hold, and in disconnected mode.
 */
export function evaluateSyncAlerts(
  db: Db,
  clock: Clock,
  state: SyncState,
  alerts: AlertService,
  o: { on: boolean; url: string; syncOverdueHours: number; unreachableAlertHours: number },
): void {
  const now = clock.now();
  if (o.on && state.connectedSince === null) db.transaction(() => (state.connectedSince = now))();
  const last = state.lastSuccessAt ?? state.connectedSince;
  if (o.on && last !== null && now - last > o.syncOverdueHours * 3_600_000) {
    alerts.raise('sync_overdue', {
      subject: 'upstream', severity: 'warning',
      message: `${state.lastSuccessAt === null ? 'no sync has succeeded yet' : `no sync has succeeded since ${toIso(last)}`} (more than ${o.syncOverdueHours} h)${state.lastError ? `: ${state.lastError.message}` : ''}`,
      details: { lastSuccessAt: toIso(last), lastError: state.lastError },
    });
  } else alerts.clear('sync_overdue', 'upstream');
  const since = state.unreachableSince;
  if (o.on && since !== null && now - since > o.unreachableAlertHours * 3_600_000) {
    alerts.raise('upstream_unreachable', {
      subject: 'upstream', severity: 'critical',
      message: `the upstream has not answered since ${toIso(since)}: ${state.lastError?.message ?? 'unreachable'}`,
      details: { since: toIso(since), url: o.url },
    });
  } else alerts.clear('upstream_unreachable', 'upstream');
}
