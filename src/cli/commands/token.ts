import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import { vaNames } from '../va-names.js';

interface Token { id: string; vaId: string; description: string; expiresAt: string; maxUses: number; uses: number; state: string; secret?: string }

export const tokenCommands: Command[] = [
  {
    name: 'token create',
    usage: 'outpost token create --va VA --description TEXT [--days 30] [--uses 1]',
    summary: 'Create a registration token in a virtual account (the secret is shown once)',
    options: { va: { type: 'string' }, description: { type: 'string' }, days: { type: 'string' }, uses: { type: 'string' } },
    fields: { expiresInDays: '--days', maxUses: '--uses' },
    async run(ctx) {
      const va = str(ctx.values.va) ?? 'Default';
      const description = str(ctx.values.description);
      if (!description) throw new CliError('--description is required');
      const t = (await ctx.api(async (api) => {
        const vaId = ((await api('GET', `/virtual-accounts/${encodeURIComponent(va)}`)) as { id: string }).id;
        return api('POST', '/tokens', {
          vaId,
          description,
          ...(ctx.values.days ? { expiresInDays: Number(ctx.values.days) } : {}),
          ...(ctx.values.uses ? { maxUses: Number(ctx.values.uses) } : {}),
        });
      })) as Token;
      ctx.output(t, () =>
        [`token ${t.id} in ${va}: ${t.maxUses} use(s), expires ${shortTime(t.expiresAt)}`, '', `  ${t.secret}`, '', 'The secret is shown only now; it is stored hashed.'].join('\n'),
      );
    },
  },
  {
    name: 'token list',
    usage: 'outpost token list [--va VA]',
    summary: 'List registration tokens',
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      const [r, name] = await ctx.api(async (api) =>
        [(await api('GET', `/tokens${va ? `?vaId=${encodeURIComponent(va)}` : ''}`)) as { items: Token[] }, await vaNames(api)] as const);
      ctx.output(r.items, () =>
        table(r.items, [
          ['id', (t) => t.id], ['va', (t) => name(t.vaId)], ['state', (t) => t.state], ['uses', (t) => `${t.uses}/${t.maxUses}`],
          ['expires', (t) => shortTime(t.expiresAt)], ['description', (t) => t.description],
        ]),
      );
    },
  },
  {
    name: 'token revoke',
    usage: 'outpost token revoke TOKEN_ID',
    summary: 'Revoke a registration token',
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the token id to revoke');
      const t = (await ctx.api((api) => api('POST', `/tokens/${encodeURIComponent(id)}/revoke`))) as Token;
      ctx.output(t, () => `token ${t.id} revoked`);
    },
  },
];
