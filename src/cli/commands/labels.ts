import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { table } from '../format.js';
import type { Label, LabelChange } from '../../labels/service.js';

interface Line {
  id: string;
  tag: string;
  displayName: string;
  kind: string;
  quantity: number;
  endsAt: string | null;
  labels: { name: string }[];
}

const need = (ctx: CommandContext, what = 'name the label'): string => {
  const name = ctx.positionals[0];
  if (!name) throw new CliError(what);
  return name;
};
const at = (name: string) => `/labels/${encodeURIComponent(name)}`;

/** A repeatable option's values (parseArgs gives an array for `multiple`). */
export const many = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

const targetOptions = {
  lines: { type: 'boolean' },
  all: { type: 'boolean' },
  va: { type: 'string' },
  status: { type: 'string' },
  source: { type: 'string' },
  pid: { type: 'string' },
  search: { type: 'string' },
  tag: { type: 'string' },
  label: { type: 'string', multiple: true },
} as const;

/**
 * What `label attach|detach` applies to: ids after the label's name, or a filter. A filter
 * with no criterion changes everything in reach, so it takes --all, said on purpose.
 */
function targetsOf(ctx: CommandContext): object {
  const ids = ctx.positionals.slice(1);
  const v = ctx.values as Record<string, unknown>;
  const lines = Boolean(v.lines);
  if (ids.length) return lines ? { lines: ids } : { devices: ids };
  const va = str(ctx.values.va);
  if (lines) {
    const tag = str(ctx.values.tag);
    if (!va && !tag && !v.all) throw new CliError('name line ids, or filter with --va VA and/or --tag TAG (--all: every line you may change)');
    return { lineFilter: { ...(va ? { vaId: va } : {}), ...(tag ? { tag } : {}) } };
  }
  const filter: Record<string, unknown> = {};
  if (va) filter.vaId = va;
  for (const k of ['status', 'source', 'pid'] as const) {
    const x = str(ctx.values[k]);
    if (x) filter[k] = x;
  }
  const q = str(ctx.values.search);
  if (q) filter.q = q;
  const labels = many(v.label);
  if (labels.length) filter.label = labels;
  if (!Object.keys(filter).length && !v.all) {
    throw new CliError('name device ids, or filter with --va, --pid (C9300-* for a prefix), --status, --source, --search, --label (--all: every device you may change)');
  }
  return { deviceFilter: filter };
}

const change = (op: 'attach' | 'detach'): Command => ({
  name: `label ${op}`,
  usage: `outpost label ${op} NAME [DEVICE_ID…] [--va VA] [--pid PID|PREFIX*] [--status S] [--source S] [--search TEXT] [--label L]… [--all]\n` +
    `       outpost label ${op} NAME --lines [LINE_ID…] [--va VA] [--tag TAG] [--all]`,
  summary: `${op === 'attach' ? 'Attach a label to' : 'Detach a label from'} devices or entitlement lines, by id or by filter (one transaction)`,
  options: targetOptions,
  fields: { vaId: '--va', q: '--search', devices: 'DEVICE_ID', lines: 'LINE_ID' },
  async run(ctx) {
    const name = need(ctx);
    const r = (await ctx.api((api) => api('POST', `${at(name)}/${op}`, targetsOf(ctx)))) as LabelChange;
    const what = r.target === 'devices' ? 'device' : 'entitlement line';
    ctx.output(r, () => `${r.label}: ${op === 'attach' ? 'attached to' : 'detached from'} ${r.changed} ${what}${r.changed === 1 ? '' : 's'}`);
  },
});

export const labelCommands: Command[] = [
  {
    name: 'label list',
    usage: 'outpost label list',
    summary: 'List labels, with how many devices and entitlement lines carry each',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/labels'))) as { items: Label[] };
      ctx.output(r.items, () =>
        table(r.items, [['name', (l) => l.name], ['colour', (l) => l.colour], ['devices', (l) => l.devices], ['lines', (l) => l.lines], ['description', (l) => l.description]]),
      );
    },
  },
  {
    name: 'label create',
    usage: 'outpost label create NAME --colour #RRGGBB [--description TEXT]',
    summary: 'Create a label (collector-wide; names are unique without regard to case)',
    options: { colour: { type: 'string' }, description: { type: 'string' } },
    fields: { name: 'NAME' },
    async run(ctx) {
      const name = need(ctx);
      const colour = str(ctx.values.colour);
      if (!colour) throw new CliError('--colour is required (#rrggbb)');
      const description = str(ctx.values.description);
      const l = (await ctx.api((api) => api('POST', '/labels', { name, colour, ...(description !== undefined ? { description } : {}) }))) as Label;
      ctx.output(l, () => `label ${l.name} created (${l.colour})`);
    },
  },
  {
    name: 'label update',
    usage: 'outpost label update NAME [--name NEW_NAME] [--colour #RRGGBB] [--description TEXT]',
    summary: 'Rename, recolour or describe a label',
    options: { name: { type: 'string' }, colour: { type: 'string' }, description: { type: 'string' } },
    async run(ctx) {
      const name = need(ctx);
      const body: Record<string, string> = {};
      for (const k of ['name', 'colour', 'description'] as const) {
        const v = str(ctx.values[k]);
        if (v !== undefined) body[k] = v;
      }
      const l = (await ctx.api((api) => api('PATCH', at(name), body))) as Label;
      ctx.output(l, () => `label ${l.name} (${l.colour}) updated`);
    },
  },
  {
    name: 'label delete',
    usage: 'outpost label delete NAME',
    summary: 'Delete a label; it is detached from every device and line at once',
    async run(ctx) {
      const name = need(ctx);
      const r = (await ctx.api((api) => api('DELETE', at(name)))) as { name: string; detached: { devices: number; lines: number } };
      ctx.output(r, () => `label ${r.name} deleted (detached from ${r.detached.devices} devices and ${r.detached.lines} entitlement lines)`);
    },
  },
  change('attach'),
  change('detach'),
  {
    name: 'label lines',
    usage: 'outpost label lines --va VA [--label NAME]…',
    summary: "A VA's entitlement lines with their labels, filtered by label",
    options: { va: { type: 'string' }, label: { type: 'string', multiple: true } },
    async run(ctx) {
      const va = str(ctx.values.va);
      if (!va) throw new CliError('--va is required');
      const q = new URLSearchParams();
      for (const l of many((ctx.values as Record<string, unknown>).label)) q.append('label', l);
      const r = (await ctx.api((api) => api('GET', `/virtual-accounts/${encodeURIComponent(va)}/entitlements${q.size ? `?${q}` : ''}`))) as { items: Line[] };
      ctx.output(r, () =>
        table(r.items, [
          ['id', (l) => l.id], ['license', (l) => l.displayName], ['kind', (l) => l.kind], ['quantity', (l) => l.quantity],
          ['labels', (l) => l.labels.map((x) => x.name).join('; ')],
        ]),
      );
    },
  },
];
