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
 * ACK overdue, per destination. The Outpost upstream: the oldest usage bundle still unanswered
 * was written longer ago than the policy allows for an ACK, while reports wait for one. The
 * vendor portal: RUM reports have waited longer than that for the portal's ACK, whether or not
 * an upload was written (the portal cannot answer what was never carried to it).
 */
export function evaluateAckOverdue(s: Pick<Services, 'time' | 'alerts' | 'db' | 'policy' | 'exchange' | 'destinations'>): void {
  const dueMs = s.policy.get().ackDueDays * 86_400_000;
  const days = dueMs / 86_400_000;
  const now = s.time.now();
  const oldest = s.db
    .prepare("SELECT id, sequence, created_at FROM bundles WHERE direction = 'out' AND kind = 'usage' AND sequence > ? ORDER BY sequence LIMIT 1")
    .get(s.exchange.state.answeredHwm) as { id: string; sequence: number; created_at: number } | undefined;
  const waiting = (s.db.prepare("SELECT count(*) AS n FROM report_pending WHERE destination = 'outpost'").get() as { n: number }).n;
  const overdue = [];
  if (oldest && waiting > 0 && now - oldest.created_at > dueMs) {
    overdue.push({
      subject: 'usage',
      severity: 'warning' as const,
      message: `usage bundle ${oldest.sequence}, written ${toIso(oldest.created_at)}, has had no answer within ${days} days; ${waiting} reports wait for an ACK`,
      details: { destination: 'outpost', bundleId: oldest.id, sequence: oldest.sequence, pending: waiting },
    });
  }
  const portal = s.destinations.used().includes('portal')
    ? (s.db.prepare("SELECT count(*) AS n, min(since) AS since FROM report_pending WHERE destination = 'portal'").get() as { n: number; since: number | null })
    : { n: 0, since: null };
  if (portal.since !== null && now - portal.since > dueMs) {
    const upload = s.db.prepare('SELECT file, created_at FROM portal_uploads ORDER BY created_at DESC LIMIT 1').get() as { file: string; created_at: number } | undefined;
    overdue.push({
      subject: 'portal',
      severity: 'warning' as const,
      message:
        `${portal.n} RUM reports have waited for the vendor portal's ACK for more than ${days} days (the oldest since ${toIso(portal.since)}); ` +
        (upload ? `the last upload was written ${toIso(upload.created_at)}: import the portal's answer with outpost cisco import-ack` : 'no upload has been written: run outpost cisco export'),
      details: { destination: 'portal', pending: portal.n, oldestSince: toIso(portal.since), lastUploadAt: toIso(upload?.created_at ?? null) },
    });
  }
  s.alerts.reconcile('ack_overdue', overdue);
}
