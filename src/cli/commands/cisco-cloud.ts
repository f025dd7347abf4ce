import { secretInput } from '../secret-input.js';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { CssmAccount, ResolvedAccount } from '../../cssm/accounts.js';

interface PositionRow {
  vaName: string; cssmVa: string; license: string; tag: string | null; quantity: number; cssmInUse: number; localInUse: number | null;
  difference: number | null; available: number | null; status: string | null; readAt: string | null;
}

export const ciscoCloudCommands: Command[] = [
  {
    name: 'cisco cloud credentials',
    usage: 'outpost cisco cloud credentials (--secret-file FILE | OUTPOST_CSSM_CLIENT_SECRET)',
    summary: "Store the API client's secret for Cisco's cloud, sealed with the collector's secret key; never shown again",
    options: { 'secret-file': { type: 'string' } },
    async run(ctx) {
      const secret = secretInput(str(ctx.values['secret-file']), 'client secret file', 'OUTPOST_CSSM_CLIENT_SECRET');
      if (!secret) throw new CliError('give the client secret with --secret-file FILE (mode 0600) or in OUTPOST_CSSM_CLIENT_SECRET; never on the command line');
      const r = (await ctx.api((api) => api('POST', '/cisco/cloud/credentials', { clientSecret: secret }))) as { setAt: string };
      ctx.output(r, () => `the client secret is stored (sealed); set at ${r.setAt}`);
    },
  },
  {
    name: 'cisco accounts',
    usage: 'outpost cisco accounts',
    summary: "The smart accounts Cisco's cloud credentials reach, their virtual accounts, and how each local VA maps onto them",
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/cisco/accounts'))) as { accounts: CssmAccount[]; resolved: ResolvedAccount | null; problem: string | null };
      ctx.output(r, () => {
        const lines = r.accounts.map((a) => `${a.domain} (account ${a.accountId}): ${a.virtualAccounts.map((v) => v.name).join(', ') || 'no virtual account'}`);
        if (!lines.length) lines.push('the credentials reach no smart account');
        if (r.problem) lines.push('', r.problem);
        if (r.resolved) {
          lines.push('', table(r.resolved.mappings, [['local VA', (m) => m.vaName], ['CSSM virtual account', (m) => m.cssm?.name ?? '—'], ['problem', (m) => m.problem]]));
          if (r.resolved.unmappedCssm.length) lines.push(`CSSM virtual accounts no local VA maps to: ${r.resolved.unmappedCssm.join(', ')}`);
        }
        return lines.join('\n');
      });
    },
  },
  {
    name: 'cisco positions',
    usage: 'outpost cisco positions [--va VA]',
    summary: "License positions last read from Cisco's cloud, beside Outpost's own in-use count (positions with no tag are shown, not counted)",
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      const r = (await ctx.api((api) => api('GET', `/cisco/positions${va ? `?vaId=${encodeURIComponent(va)}` : ''}`))) as { items: PositionRow[] };
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['VA', (p) => p.vaName], ['license', (p) => p.license], ['tag', (p) => p.tag ?? '(no tag: set cisco.cloud.licenseTags)'], ['owned', (p) => p.quantity],
              ['CSSM in use', (p) => p.cssmInUse], ['Outpost in use', (p) => p.localInUse ?? '—'], ['difference', (p) => p.difference ?? '—'], ['status', (p) => p.status],
              ['read', (p) => shortTime(p.readAt)],
            ])
          : "no positions read yet: they are read by each sync with Cisco's cloud (outpost sync now)",
      );
    },
  },
  {
    name: 'cisco license-tags',
    usage: 'outpost cisco license-tags [set NAME TAG | remove NAME]',
    summary: "License names mapped to entitlement tags, for Cisco cloud positions that carry no tag (applied at the next sync)",
    async run(ctx) {
      const [verb, name, tag] = ctx.positionals;
      if (verb === 'set') {
        if (!name || !tag) throw new CliError('set takes the license name as CSSM shows it and its entitlement tag: outpost cisco license-tags set "DNA Advantage" regid.…');
        const r = await ctx.api((api) => api('POST', '/cisco/license-tags', { license: name, tag }));
        return void ctx.output(r, () => `${name} → ${tag} (applied at the next sync with Cisco's cloud)`);
      }
      if (verb === 'remove') {
        if (!name) throw new CliError('remove takes the license name');
        const r = await ctx.api((api) => api('DELETE', `/cisco/license-tags/${encodeURIComponent(name)}`));
        return void ctx.output(r, () => `${name}: no tag mapping any more`);
      }
      if (verb !== undefined) throw new CliError(`unknown action ${JSON.stringify(verb)}: set NAME TAG, or remove NAME`);
      const r = (await ctx.api((api) => api('GET', '/cisco/license-tags'))) as { items: { license: string; tag: string; from: string }[] };
      ctx.output(r.items, () => (r.items.length ? table(r.items, [['license', (t) => t.license], ['tag', (t) => t.tag], ['from', (t) => t.from]]) : 'no license name is mapped to a tag'));
    },
  },
];
