import type { Services } from '../services.js';
import { DAY_MS, toIso } from '../shared/clock.js';
import { dayFromNumber, dayNumber } from '../history/days.js';
import { exchangeStatus } from '../sync/status.js';
import { inScope } from '../users/authorize.js';

/** How many of the newest open alerts the overview shows. */
const NEWEST_ALERTS = 5;

export interface LicenseLine {
  vaId: string;
  vaName: string;
  tag: string;
  displayName: string;
  /** null: unlimited. */
  owned: number | null;
  inUse: number;
  /** What is left to use; null when unlimited, 0 when short. */
  available: number | null;
  short: number;
  status: string;
  devices: number;
}

/**
 * The console's first page in one answer, each figure read where the route that owns it reads
 * it (compliance, device counts, the exchange status, the alerts), so that the overview and the
 * pages behind it never disagree. `scope` is the listScope of the request (its VAs only);
 * `global`, whether the caller may read the whole collector's state (the exchange).
 */
export function overview(services: Services, scope: { vaId?: string; vaIds?: string[] }, global: boolean) {
  const vaIds = scope.vaId !== undefined ? [scope.vaId] : scope.vaIds;
  const licenses: LicenseLine[] = inScope(services.licenses.complianceAll(), scope).flatMap((va) =>
    va.tags.map((t) => ({
      vaId: va.vaId, vaName: va.vaName, tag: t.tag, displayName: t.displayName, owned: t.owned, inUse: t.inUse,
      available: t.owned === null ? null : Math.max(0, t.owned - t.inUse), short: t.short, status: t.status, devices: t.devices,
    })),
  );
  // Shortages first (the largest first), then whatever else is out of compliance, then the rest by name.
  const rank = (l: LicenseLine) => (l.status === 'shortage' ? 0 : l.status === 'in_compliance' ? 2 : 1);
  licenses.sort((a, b) => rank(a) - rank(b) || b.short - a.short || a.vaName.localeCompare(b.vaName) || a.tag.localeCompare(b.tag));

  const byStatus = services.devices.repo.countByStatus(scope);
  const openCounts = services.alerts.openCounts(vaIds);
  const now = services.systemClock.now();
  return {
    generatedAt: toIso(now),
    licenses: {
      shortages: licenses.filter((l) => l.status !== 'in_compliance').length,
      items: licenses,
    },
    devices: { total: byStatus.active + byStatus.stale + byStatus.deregistered, byStatus },
    // The exchange is the whole collector's: a caller with roles on some VAs only may not read it.
    exchange: global ? exchangeSummary(services) : null,
    alerts: {
      open: openCounts.reduce((n, c) => n + c.count, 0),
      byKind: openCounts,
      newest: services.alerts.list({ open: true, vaIds, limit: NEWEST_ALERTS }).items,
    },
    changes: changesSinceYesterday(services, scope, vaIds, now),
  };
}

function exchangeSummary(services: Services) {
  const s = exchangeStatus(services);
  const newest = services.exchange.state.bundles(1)[0];
  return {
    mode: s.mode,
    upstream: services.config.exchange.upstream.kind,
    lastSuccessAt: s.lastSuccessAt,
    lastError: s.lastError,
    nextRunAt: s.nextRunAt,
    // In the file exchange, the monthly export is what runs next, and the newest bundle the last that moved.
    nextExportAt: toIso(services.exchange.state.nextExportDue),
    lastBundleAt: newest ? toIso(newest.created_at) : null,
    waiting: s.destinations,
  };
}

/**
 * In use per VA and tag, today's peak against yesterday's (from the daily history), and the
 * audit trail's last 24 hours counted by event type.
 */
function changesSinceYesterday(services: Services, scope: { vaId?: string; vaIds?: string[] }, vaIds: string[] | undefined, now: number) {
  const today = services.history.today();
  const yesterday = dayFromNumber(dayNumber(today) - 1);
  const pairs = new Map<string, { vaId: string; tag: string; today: number | null; yesterday: number | null }>();
  const rows = inScope(services.history.repo.window(yesterday, today).map((r) => ({ ...r, vaId: r.va_id })), scope);
  for (const r of rows) {
    const k = `${r.va_id}\u0000${r.tag}`;
    const p = pairs.get(k) ?? { vaId: r.va_id, tag: r.tag, today: null, yesterday: null };
    if (r.day === today) p.today = r.in_use;
    else p.yesterday = r.in_use;
    pairs.set(k, p);
  }
  const usage = [...pairs.values()]
    .map((p) => ({ ...p, change: (p.today ?? 0) - (p.yesterday ?? 0) }))
    .sort((a, b) => Math.abs(b.change) - Math.abs(a.change) || a.vaId.localeCompare(b.vaId) || a.tag.localeCompare(b.tag));
  const since = now - DAY_MS;
  return { today, yesterday, usage, events: { since: toIso(since), byType: services.events.countByType(since, vaIds) } };
}
