import type { Db } from '../store/open.js';
import type { Severity } from '../alerts/repository.js';
import { zonedParts } from '../time/zone.js';
import { matches } from './filter.js';
import type { Outbox } from './outbox.js';
import type { SubscriptionStore } from './subscriptions.js';
import type { MayRead } from './readers.js';

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };
const DAY_MS = 86_400_000;

interface AlertLine { id: number; kind: string; subject: string; severity: Severity; message: string; va_id: string | null; first_seen_at: number; cleared_at: number | null }

/**
 * The daily digest: for each subscriber who asked for one, the alerts of their filter opened or
 * resolved in the last 24 hours, one line each, as one e-mail. A day with none sends none; the
 * day (in the site's zone) is written once even if the job runs twice.
 */
export function writeDigests(db: Db, outbox: Outbox, subscriptions: SubscriptionStore, mayRead: MayRead, now: number, zone: string): number {
  const p = zonedParts(now, zone);
  const day = `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`;
  const since = now - DAY_MS;
  let written = 0;
  db.transaction(() => {
    const alerts = db
      .prepare('SELECT id, kind, subject, severity, message, va_id, first_seen_at, cleared_at FROM alerts WHERE first_seen_at >= ? OR cleared_at >= ? ORDER BY id')
      .all(since, since) as AlertLine[];
    for (const s of subscriptions.all()) {
      if (!s.digest) continue;
      const mine = alerts.filter((a) => matches({ ...s.filter, kinds: null }, { severity: a.severity, vaId: a.va_id, kind: a.kind }) && mayRead(s.userId, a.va_id));
      if (!mine.length) continue;
      const worst = mine.reduce<Severity>((w, a) => (RANK[a.severity] > RANK[w] ? a.severity : w), 'info');
      const open = mine.filter((a) => a.cleared_at === null).length;
      const lines = mine.map(
        (a) => `- ${a.severity.toUpperCase()} ${a.kind} ${a.subject}: ${a.message} (opened ${new Date(a.first_seen_at).toISOString()}${a.cleared_at !== null ? `, resolved ${new Date(a.cleared_at).toISOString()}` : ', still open'})`,
      );
      const text = `${mine.length} alerts in the 24 hours to ${new Date(now).toISOString()}, ${open} still open:\n\n${lines.join('\n')}\n`;
      if (outbox.enqueueDigest(s.userId, day, worst, text, { alerts: mine.map((a) => a.id), open })) written++;
    }
  })();
  return written;
}
