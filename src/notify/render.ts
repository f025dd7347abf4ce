import type { NotificationRow } from './outbox.js';

/** One line saying what happened, and how often when repeats were coalesced. */
export function summary(n: NotificationRow): string {
  if (n.event === 'digest') return `Outpost daily digest for ${n.subject}`;
  if (n.event === 'notice') return n.message;
  const what = n.event === 'opened' ? 'opened' : 'resolved';
  const times = n.count > 1 ? ` (${what} ${n.count} times since ${new Date(n.created_at).toISOString()})` : '';
  return `${n.severity.toUpperCase()} ${n.kind} ${n.subject} ${what}: ${n.message}${times}`;
}

/** What a webhook receives. */
export function payload(n: NotificationRow, collectorId: string, now: number) {
  return {
    id: n.id,
    event: n.event,
    count: n.count,
    firstAt: new Date(n.created_at).toISOString(),
    sentAt: new Date(now).toISOString(),
    collectorId,
    alert: n.event === 'digest' || n.event === 'notice'
      ? null
      : { id: n.alert_id, kind: n.kind, subject: n.subject, severity: n.severity, vaId: n.va_id, message: n.message, details: JSON.parse(n.details_json) as unknown },
    ...(n.event === 'digest' ? { digest: { day: n.subject, text: n.message } } : {}),
    ...(n.event === 'notice' ? { notice: { kind: n.kind, subject: n.subject, vaId: n.va_id, message: n.message, details: JSON.parse(n.details_json) as unknown } } : {}),
    text: summary(n),
  };
}
