import { toIso } from '../shared/clock.js';
import type { Services } from '../services.js';

/** Tokens and entitlement lines that end within the warning window raise an alert each. */
export function evaluateExpiryAlerts(s: Pick<Services, 'time' | 'tokens' | 'licenses' | 'alerts' | 'db'>, windowMs: number): void {
  const now = s.time.now();
  s.db.transaction(() => {
    s.alerts.reconcile(
      'token_expiring',
      s.tokens.repo.expiringBetween(now, now + windowMs).map((t) => ({
        subject: t.id,
        severity: 'info' as const,
        message: `registration token "${t.description}" expires on ${toIso(t.expires_at)}`,
        details: { vaId: t.va_id, expiresAt: toIso(t.expires_at) },
      })),
    );
    s.alerts.reconcile(
      'entitlement_expiring',
      s.licenses.entitlements.endingBetween(now, now + windowMs).map((l) => ({
        subject: l.id,
        severity: 'warning' as const,
        message: `${l.display_name} (${l.quantity}, ${l.kind}) ends on ${toIso(l.ends_at)}`,
        details: { vaId: l.va_id, tag: l.tag, endsAt: toIso(l.ends_at) },
      })),
    );
  })();
}

/**
 * ACK overdue: the oldest usage bundle still unanswered was written longer ago than the
 * policy allows for an ACK, while reports wait for one.
 */
export function evaluateAckOverdue(s: Pick<Services, 'time' | 'alerts' | 'db' | 'policy' | 'exchange'>): void {
  const dueMs = s.policy.get().ackDueDays * 86_400_000;
  const oldest = s.db
    .prepare("SELECT id, sequence, created_at FROM bundles WHERE direction = 'out' AND kind = 'usage' AND sequence > ? ORDER BY sequence LIMIT 1")
    .get(s.exchange.state.answeredHwm) as { id: string; sequence: number; created_at: number } | undefined;
  const waiting = (s.db.prepare('SELECT count(*) AS n FROM report_pending').get() as { n: number }).n;
  const overdue = oldest && waiting > 0 && s.time.now() - oldest.created_at > dueMs;
  s.alerts.reconcile(
    'ack_overdue',
    overdue
      ? [{
          subject: 'usage',
          severity: 'warning' as const,
          message: `usage bundle ${oldest.sequence}, written ${toIso(oldest.created_at)}, has had no answer within ${dueMs / 86_400_000} days; ${waiting} reports wait for an ACK`,
          details: { bundleId: oldest.id, sequence: oldest.sequence, pending: waiting },
        }]
      : [],
  );
}
