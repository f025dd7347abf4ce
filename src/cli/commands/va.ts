import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { table } from '../format.js';

interface Va { id: string; name: string; origin: string; devices: number; description: string }

export const vaCommands: Command[] = [
  {
    name: 'va list',
    usage: 'outpost va list',
    summary: 'List virtual accounts',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/virtual-accounts'))) as { items: Va[] };
      ctx.output(r.items, () =>
        table(r.items, [['id', (v) => v.id], ['name', (v) => v.name], ['origin', (v) => v.origin], ['devices', (v) => v.devices]]),
      );
    },
  },
  {
    name: 'va create',
    usage: 'outpost va create NAME [--description TEXT]',
    summary: 'Create a virtual account (local until the upstream confirms it)',
    options: { description: { type: 'string' } },
    fields: { name: 'NAME' },
    async run(ctx) {
      const name = ctx.positionals[0];
      if (!name) throw new CliError('name the virtual account');
      const v = (await ctx.api((api) => api('POST', '/virtual-accounts', { name, description: str(ctx.values.description) }))) as Va;
      ctx.output(v, () => `virtual account ${v.name} created: ${v.id}`);
    },
  },
  {
    name: 'va rename',
    usage: 'outpost va rename VA NEW_NAME',
    summary: 'Rename a virtual account (its id does not change)',
    fields: { name: 'NEW_NAME' },
    async run(ctx) {
      const [id, name] = ctx.positionals;
      if (!id || !name) throw new CliError('usage: outpost va rename VA NEW_NAME');
      const v = (await ctx.api((api) => api('PATCH', `/virtual-accounts/${encodeURIComponent(id)}`, { name }))) as Va;
      ctx.output(v, () => `virtual account ${v.id} is now ${v.name}`);
    },
  },
  {
    name: 'va delete',
    usage: 'outpost va delete VA',
    summary: 'Delete an empty virtual account',
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new CliError('name the virtual account');
      await ctx.api((api) => api('DELETE', `/virtual-accounts/${encodeURIComponent(id)}`));
      ctx.output({ deleted: id }, () => `virtual account ${id} deleted`);
    },
  },
];
