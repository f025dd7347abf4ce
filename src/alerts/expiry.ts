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
