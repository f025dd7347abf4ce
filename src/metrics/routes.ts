import { route } from '../http/route.js';
import { AppError } from '../shared/errors.js';
import type { Route } from '../http/route.js';

/** The collector seen from outside: Prometheus's scrape, and whether to send it work. */
export const metricsRoutes: Route[] = [
  route({
    method: 'get', path: '/metrics', at: 'root', permission: 'read-or-loopback',
    summary: 'Prometheus metrics: reports, latencies, devices, usage, alerts, sync and export, acknowledgements, polled devices',
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    handler: ({ services }) => services.metrics.metrics(),
  }),
  route({
    method: 'get', path: '/readyz', at: 'root', permission: 'public',
    summary: 'Ready for work: database writable, migrations applied, disk above its floor, signature workers alive (503 naming what is not)',
    handler: ({ services }) => {
      const state = services.readiness.check();
      if (state.ready) return { status: 'ready', checks: state.checks };
      const failing = Object.entries(state.checks).filter(([, c]) => !c.ok).map(([name]) => name);
      throw new AppError(503, 'not_ready', `not ready: ${failing.map((f) => `${f} (${state.checks[f as keyof typeof state.checks].detail})`).join('; ')}`, { failing, checks: state.checks });
    },
  }),
];
