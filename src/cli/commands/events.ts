import type { Command } from '../command.js';
import { str } from '../command.js';
import { shortTime, table } from '../format.js';
import type { Event } from '../../events/service.js';
import type { Alert } from '../../alerts/service.js';

export const eventCommands: Command[] = [
  {
    name: 'events',
    usage: 'outpost events [--type TYPE|prefix.*] [--subject ID] [--va VA] [--limit 50]',
    summary: 'Read the audit trail, newest first',
    options: { type: { type: 'string' }, subject: { type: 'string' }, va: { type: 'string' }, limit: { type: 'string' } },
    async run(ctx) {
      const q = new URLSearchParams({ limit: str(ctx.values.limit) ?? '50' });
      for (const [k, p] of [['type', 'type'], ['subject', 'subject'], ['va', 'vaId']] as const) {
        const v = str(ctx.values[k]);
        if (v) q.set(p, v);
      }
      const r = (await ctx.api((api) => api('GET', `/events?${q}`))) as { items: Event[] };
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (e) => e.id], ['at', (e) => shortTime(e.at)], ['type', (e) => e.type], ['actor', (e) => e.actor],
          ['subject', (e) => e.subject], ['details', (e) => e.details],
        ]),
      );
    },
  },
  {
    name: 'events verify',
    usage: 'outpost events verify',
    summary: 'Check the hash chain of the audit trail; exits 1 if a row was altered',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/events/verify'))) as { intact: boolean; firstBrokenId: number | null; head: { id: number } };
      ctx.output(r, () =>
        r.intact ? `the audit trail is intact: ${r.head.id} event(s), chained` : `the audit trail is broken: event ${r.firstBrokenId} does not chain to the one before it`,
      );
      return r.intact ? 0 : 1;
    },
  },
  {
    name: 'alerts',
    usage: 'outpost alerts [--all] [--evaluate]',
    summary: 'List open alerts (--all includes cleared ones; --evaluate checks every condition first)',
    options: { all: { type: 'boolean' }, evaluate: { type: 'boolean' } },
    async run(ctx) {
      const r = (await ctx.api(async (api) => {
        if (ctx.values.evaluate) await api('POST', '/alerts/evaluate');
        return api('GET', `/alerts?state=${ctx.values.all ? 'all' : 'open'}&limit=1000`);
      })) as { items: Alert[] };
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['severity', (a) => a.severity], ['kind', (a) => a.kind], ['since', (a) => shortTime(a.firstSeenAt)],
              ['cleared', (a) => shortTime(a.clearedAt)], ['message', (a) => a.message],
            ])
          : 'no open alerts',
      );
    },
  },
];
