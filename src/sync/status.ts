import type { Services } from '../services.js';

/**
 * The exchange's status as GET /exchange/status answers it: the upstream's own status (the
 * Outpost sync's or the Cisco cloud sync's) with the reports waiting per destination. The
 * overview shows the same figures, so both read them here.
 */
export function exchangeStatus(services: Services) {
  if (services.config.exchange.upstream.kind === 'cisco') {
    const c = services.cloud.sync.status();
    const cssm = { destination: 'cssm' as const, waiting: c.waiting.reports, oldestWaitingSince: c.waiting.oldestSince };
    return { ...c, destinations: [cssm, ...services.destinations.standing('cssm')] };
  }
  const s = services.sync.status();
  // The Outpost upstream's count comes from the sync's status, which avoids a scan while a sync runs.
  const outpost = { destination: 'outpost' as const, waiting: s.waiting.reports, oldestWaitingSince: s.waiting.oldestSince };
  return { ...s, destinations: [outpost, ...services.destinations.standing('outpost')] };
}
