import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import { vaNames } from '../va-names.js';

interface Transfer {
  id: string; fromVaId: string; toVaId: string; tag: string; quantity: number; reason: string | null;
  state: 'provisional' | 'confirmed' | 'refused'; requestedAt: string; refusal: string | null;
  settledBy?: 'manual' | 'upstream' | null; warning?: string;
  lines: { kind: string; quantity: number; endsAt: string | null }[];
}

export const licenseCommands: Command[] = [
  {
    name: 'licenses transfer',
    usage: 'outpost licenses transfer --from VA --to VA --tag TAG --quantity N [--reason TEXT]',
    summary: 'Transfer licenses of one tag between virtual accounts (provisional until the upstream confirms it)',
    options: { from: { type: 'string' }, to: { type: 'string' }, tag: { type: 'string' }, quantity: { type: 'string' }, reason: { type: 'string' } },
    fields: { fromVaId: '--from', toVaId: '--to' },
    async run(ctx) {
      const [from, to, tag, quantity] = [str(ctx.values.from), str(ctx.values.to), str(ctx.values.tag), str(ctx.values.quantity)];
      const missing = Object.entries({ '--from': from, '--to': to, '--tag': tag, '--quantity': quantity }).filter(([, v]) => !v).map(([k]) => k);
      if (missing.length) throw new CliError(`${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`);
      const reason = str(ctx.values.reason);
      // A number as typed goes as a number; anything else goes as typed, for the API to name what is wrong.
      const body = { fromVaId: from, toVaId: to, tag, quantity: /^\d+$/.test(quantity!) ? Number(quantity) : quantity, ...(reason ? { reason } : {}) };
      const [t, name] = await ctx.api(async (api) => [(await api('POST', '/licenses/transfers', body)) as Transfer, await vaNames(api)] as const);
      ctx.output(t, () =>
        `transfer ${t.id}: ${t.quantity} of ${t.tag} from ${name(t.fromVaId)} to ${name(t.toVaId)}, ${t.state} until the upstream confirms it\n` +
        t.lines.map((l) => `  ${l.quantity} ${l.kind}${l.endsAt ? ` ending ${shortTime(l.endsAt)}` : ''}`).join('\n'),
      );
    },
  },
  {
    name: 'licenses transfer settle',
    usage: 'outpost licenses transfer settle ID --as confirmed|reverted --reason TEXT',
    summary: 'Settle a provisional transfer by hand: confirmed (the upstream holds it) or reverted (undone here, not sent again)',
    options: { as: { type: 'string' }, reason: { type: 'string' } },
    fields: { id: 'ID', as: '--as', reason: '--reason' },
    async run(ctx) {
      const id = ctx.positionals[0];
      const [as, reason] = [str(ctx.values.as), str(ctx.values.reason)];
      if (!id) throw new CliError('name the transfer (its id, from outpost licenses transfers)');
      const missing = Object.entries({ '--as': as, '--reason': reason }).filter(([, v]) => !v).map(([k]) => k);
      if (missing.length) throw new CliError(`${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`);
      const [t, name] = await ctx.api(async (api) => [(await api('POST', `/licenses/transfers/${encodeURIComponent(id)}/settle`, { as, reason })) as Transfer, await vaNames(api)] as const);
      ctx.output(t, () =>
        `transfer ${t.id}: ${t.quantity} of ${t.tag} from ${name(t.fromVaId)} to ${name(t.toVaId)}, ${as === 'confirmed' ? 'confirmed by hand' : 'reverted by hand'}` +
        (t.warning ? `\nwarning: ${t.warning}` : ''),
      );
    },
  },
  {
    name: 'licenses transfers',
    usage: 'outpost licenses transfers [--va VA] [--state provisional|confirmed|refused]',
    summary: 'List license transfers between virtual accounts, with their state',
    options: { va: { type: 'string' }, state: { type: 'string' } },
    fields: { vaId: '--va' },
    async run(ctx) {
      const q = new URLSearchParams();
      const va = str(ctx.values.va);
      const state = str(ctx.values.state);
      if (va) q.set('vaId', va);
      if (state) q.set('state', state);
      const qs = q.size ? `?${q}` : '';
      const [r, name] = await ctx.api(async (api) => [(await api('GET', `/licenses/transfers${qs}`)) as { items: Transfer[] }, await vaNames(api)] as const);
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['id', (t) => t.id], ['from', (t) => name(t.fromVaId)], ['to', (t) => name(t.toVaId)], ['tag', (t) => t.tag], ['quantity', (t) => t.quantity],
              ['state', (t) => t.state + (t.refusal ? ` (${t.refusal})` : '')], ['requested', (t) => shortTime(t.requestedAt)],
            ])
          : 'no license transfers',
      );
    },
  },
];
