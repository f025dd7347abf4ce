import type { Command } from '../command.js';
import { str } from '../command.js';
import { table } from '../format.js';
import type { VaCompliance, Drift } from '../../licenses/service.js';
import { vaNames } from '../va-names.js';

function render(list: VaCompliance[]): string {
  return list
    .map((va) => {
      const head = `${va.vaName} (${va.vaId}): ${va.status.replace(/_/g, ' ')}`;
      if (!va.tags.length) return `${head}\n  no licenses in use or owned`;
      return (
        head + '\n' +
        table(va.tags, [
          ['license', (t) => t.displayName], ['owned', (t) => (t.owned === null ? 'unlimited' : t.owned)], ['in use', (t) => t.inUse],
          ['devices', (t) => t.devices], ['status', (t) => t.status.replace(/_/g, ' ') + (t.short ? ` (short ${t.short})` : '')],
        ])
          .split('\n')
          .map((l) => '  ' + l)
          .join('\n')
      );
    })
    .join('\n\n');
}

export const complianceCommands: Command[] = [
  {
    name: 'compliance',
    usage: 'outpost compliance [--va VA]',
    summary: 'Where each virtual account stands: owned vs in use, per license',
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      const list = await ctx.api(async (api) =>
        va ? [(await api('GET', `/virtual-accounts/${encodeURIComponent(va)}/compliance`)) as VaCompliance] : ((await api('GET', '/compliance')) as { items: VaCompliance[] }).items,
      );
      ctx.output(va ? list[0] : list, () => render(list));
    },
  },
  {
    name: 'compliance verify',
    usage: 'outpost compliance verify',
    summary: 'Rebuild the in-use counters from per-device usage and report any drift',
    async run(ctx) {
      const [r, va] = await ctx.api(async (api) => [(await api('POST', '/compliance/verify')) as { checked: number; drift: Drift[] }, await vaNames(api)] as const);
      ctx.output(r, () =>
        r.drift.length
          ? `drift found and repaired in ${r.drift.length} of ${r.checked} counters:\n` +
            table(r.drift, [['va', (d) => va(d.vaId)], ['tag', (d) => d.tag], ['stored', (d) => d.stored.inUse], ['actual', (d) => d.actual.inUse]])
          : `no drift: ${r.checked} counters match the per-device usage`,
      );
    },
  },
];
