import type { Command } from '../command.js';
import { str } from '../command.js';
import { shortTime, table } from '../format.js';
import type { Event } from '../../events/service.js';
import type { Alert } from '../../alerts/service.js';
import { CliError } from '../client.js';
import { vaNames } from '../va-names.js';
import { resolve } from 'node:path';
import type { TrailReport } from '../../events/trail-check.js';
import type { TrailExport } from '../../events/trail-export.js';
import type { Checkpoint } from '../../events/checkpoint.js';

/** What `events verify` prints: the verdict first, then what it rests on. */
function trailText(r: TrailReport & { refused?: unknown }): string {
  const cp = r.checkpoints;
  const basis = cp.checked
    ? `${cp.matched} of ${cp.checked} ${cp.source === 'file' ? 'checkpoint(s) of the file' : 'local checkpoint(s)'} matched`
    : `no ${cp.source === 'file' ? 'checkpoint of the file' : 'local checkpoint'} was reached`;
  if (!r.finding) {
    const uncovered = cp.latest ? r.head.id - cp.latest.eventId : r.head.id;
    return [
      `the audit trail is intact: ${r.events} event(s), chained; ${basis}`,
      ...(uncovered > 0 ? [`  the last ${uncovered} event(s) come after the latest checkpoint${cp.latest ? ` (${cp.latest.at})` : ''}: the next one covers them`] : []),
    ].join('\n');
  }
  const f = r.finding;
  return [
    `the audit trail was tampered with (${f.kind.replace('_', ' ')}): ${f.message}`,
    `  first event concerned: ${f.eventId}${f.range.from !== f.range.to ? ` (somewhere in ${f.range.from} to ${f.range.to})` : ''}`,
    `  ${basis} before it`,
  ].join('\n');
}

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
      const [r, va] = await ctx.api(async (api) => [(await api('GET', `/events?${q}`)) as { items: Event[] }, await vaNames(api)] as const);
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (e) => e.id], ['at', (e) => shortTime(e.at)], ['type', (e) => e.type], ['actor', (e) => e.actor],
          ['subject', (e) => e.subject], ['va', (e) => va(e.vaId)], ['details', (e) => e.details],
        ]),
      );
    },
  },
  {
    name: 'events verify',
    usage: 'outpost events verify [--checkpoints FILE]',
    summary:
      'Check the audit trail: its hash chain, and the signed checkpoints (of FILE, JSON lines from the upstream or an events export; else the local copies); names the first event changed, removed or inserted, or a truncated tail; exits 1 if anything is found',
    options: { checkpoints: { type: 'string' } },
    async run(ctx) {
      const file = str(ctx.values.checkpoints);
      const r = (await ctx.api((api) =>
        file ? api('POST', '/events/verify', { checkpoints: resolve(file) }) : api('GET', '/events/verify'),
      )) as TrailReport;
      ctx.output(r, () => trailText(r));
      return r.intact ? 0 : 1;
    },
  },
  {
    name: 'events checkpoint',
    usage: 'outpost events checkpoint',
    summary: "Sign a checkpoint of the audit trail's head now (the schedule, events.checkpointCron, and every export make one too)",
    async run(ctx) {
      const r = (await ctx.api((api) => api('POST', '/events/checkpoints'))) as { checkpoint: Checkpoint | null };
      ctx.output(r, () =>
        r.checkpoint ? `checkpoint of event ${r.checkpoint.eventId} (${r.checkpoint.count} events), signed by ${r.checkpoint.keyId} at ${r.checkpoint.at}` : 'the audit trail is empty: nothing to sign',
      );
    },
  },
  {
    name: 'events export',
    usage: 'outpost events export [--since ID] --out FILE',
    summary: 'Write the audit trail (events after ID, with their hashes) and its signed checkpoints as JSON lines, for a SIEM',
    options: { since: { type: 'string' }, out: { type: 'string' } },
    async run(ctx) {
      const out = str(ctx.values.out);
      if (!out) throw new CliError('--out FILE is required: where the JSON lines go');
      const sinceText = str(ctx.values.since) ?? '0';
      if (!/^\d{1,15}$/.test(sinceText)) throw new CliError(`--since must be an event id (a whole number), not ${sinceText}`);
      const r = (await ctx.api((api) => api('POST', '/events/export', { out: resolve(out), since: Number(sinceText) }))) as TrailExport;
      ctx.output(r, () =>
        `${r.events} event(s)${r.firstId !== null ? ` (${r.firstId} to ${r.lastId})` : ''} and ${r.checkpoints} checkpoint(s) written to ${r.file}`,
      );
    },
  },
  {
    name: 'alerts',
    usage: 'outpost alerts [--all] [--acknowledged] [--evaluate]',
    summary: 'List open alerts not yet acknowledged (--acknowledged shows those too; --all includes cleared ones; --evaluate checks every condition first)',
    options: { all: { type: 'boolean' }, acknowledged: { type: 'boolean' }, evaluate: { type: 'boolean' } },
    async run(ctx) {
      const [r, va] = await ctx.api(async (api) => {
        if (ctx.values.evaluate) await api('POST', '/alerts/evaluate');
        return [(await api('GET', `/alerts?state=${ctx.values.all ? 'all' : 'open'}&limit=1000`)) as { items: Alert[] }, await vaNames(api)] as const;
      });
      const shown = ctx.values.acknowledged ? r.items : r.items.filter((a) => !a.acknowledged);
      const hidden = r.items.length - shown.length;
      ctx.output(shown, () =>
        (shown.length
          ? table(shown, [
              ['id', (a) => a.id], ['severity', (a) => a.severity], ['kind', (a) => a.kind], ['va', (a) => va(alertVa(a))],
              ['since', (a) => shortTime(a.firstSeenAt)], ['cleared', (a) => shortTime(a.clearedAt)],
              ['acknowledged', (a) => (a.acknowledged ? `by ${a.acknowledged.by}: ${a.acknowledged.reason}` : null)], ['message', (a) => a.message],
            ])
          : `no ${ctx.values.all ? '' : 'open '}alerts${hidden ? ' to act on' : ''}`) +
        (hidden ? `\n(${hidden} acknowledged alert(s) hidden: --acknowledged shows them)` : ''),
      );
    },
  },
  {
    name: 'alerts ack',
    usage: 'outpost alerts ack ALERT_ID --reason TEXT',
    summary: 'Acknowledge an open alert, saying why; it comes back if it clears and returns, its severity rises or a shortage grows',
    options: { reason: { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the alert id (the ID column of `outpost alerts`)');
      const reason = str(ctx.values.reason);
      if (!reason?.trim()) throw new CliError('--reason TEXT is required: say why the alert may wait');
      const a = (await ctx.api((api) => api('POST', `/alerts/${encodeURIComponent(id)}/acknowledge`, { reason }))) as Alert;
      ctx.output(a, () => `alert ${a.id} (${a.kind}) acknowledged by ${a.acknowledged?.by}: ${a.acknowledged?.reason}`);
    },
  },
];

/** The VA an alert is about: named in its details, or the subject of a per-VA alert. */
function alertVa(a: Alert): string | null {
  if (typeof a.details.vaId === 'string') return a.details.vaId;
  return a.kind === 'device_stale' || a.kind === 'device_silent' ? a.subject : null;
}
