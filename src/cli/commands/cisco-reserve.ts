import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';

interface Reservation {
  id: string; vaId: string; udi: string | null; kind: 'reserve' | 'return'; requestCode: string | null; licenses: { tag: string; quantity: number }[];
  status: 'polling' | 'complete' | 'failed'; message: string | null; authorizationCode: string | null; createdAt: string;
  delivery: { device: string | null; deliveredAt: string | null; attempts: number; error: string | null; manual?: string } | null;
}

/** --license TAG=N, given once per license (a tag holds commas and dots, never '='). */
function licenses(v: unknown): { tag: string; quantity: number }[] {
  const list = Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
  return list.map((l) => {
    const m = /^([^=\s]+)=(\d{1,7})$/.exec(l.trim());
    if (!m || Number(m[2]) < 1) throw new CliError(`--license ${l}: give it as TAG=N (the entitlement tag and how many, 1 or more)`);
    return { tag: m[1]!, quantity: Number(m[2]) };
  });
}

function delivery(r: Reservation): string {
  if (!r.delivery) return '—';
  if (r.delivery.deliveredAt) return `delivered ${shortTime(r.delivery.deliveredAt)}`;
  if (!r.delivery.device) return 'install by hand';
  return r.delivery.error ? `not yet: ${r.delivery.error}` : 'not yet';
}

function render(r: Reservation): string {
  const what = r.kind === 'return' ? `return ${r.id} for ${r.udi}` : `reservation ${r.id}${r.udi ? ` for ${r.udi}` : ''}`;
  const lines = [`${what}: ${r.status}${r.message ? ` (${r.message})` : ''}`];
  if (r.kind === 'reserve' && r.authorizationCode) {
    lines.push(`delivery: ${delivery(r)}`, '', 'authorization code:', r.authorizationCode);
  }
  return lines.join('\n');
}

export const ciscoReserveCommands: Command[] = [
  {
    name: 'cisco reserve return',
    usage: 'outpost cisco reserve return --va VA --udi PID:SERIAL --return-code CODE [--hostname NAME]',
    summary: "Return a device's reserved licenses to Cisco's cloud with the return code it printed",
    options: { va: { type: 'string' }, udi: { type: 'string' }, 'return-code': { type: 'string' }, hostname: { type: 'string' } },
    async run(ctx) {
      const [va, udi, returnCode] = [str(ctx.values.va), str(ctx.values.udi), str(ctx.values['return-code'])];
      if (!va || !udi || !returnCode) throw new CliError('give --va, --udi and --return-code\nusage: outpost cisco reserve return --va VA --udi PID:SERIAL --return-code CODE');
      const hostname = str(ctx.values.hostname);
      const r = (await ctx.api((api) => api('POST', '/cisco/reservations/return', { vaId: va, udi, returnCode, ...(hostname ? { hostname } : {}) }))) as Reservation;
      ctx.output(r, () => render(r));
    },
  },
  {
    name: 'cisco reserve',
    usage: 'outpost cisco reserve --va VA (--request-code CODE | --udi PID:SERIAL) --license TAG=N [--license TAG=N ...] [--hostname NAME]',
    summary: "Reserve licenses with Cisco's cloud: a device's request code (or a known device's UDI) becomes an authorization code, pushed to a polled device",
    options: { va: { type: 'string' }, 'request-code': { type: 'string' }, udi: { type: 'string' }, license: { type: 'string', multiple: true }, hostname: { type: 'string' } },
    fields: { vaId: '--va', requestCode: '--request-code', licenses: '--license' },
    async run(ctx) {
      const va = str(ctx.values.va);
      const requestCode = str(ctx.values['request-code']);
      const udi = str(ctx.values.udi);
      if (!va) throw new CliError('give the VA with --va');
      if (!requestCode === !udi) throw new CliError("give either --request-code (the code the device printed) or --udi PID:SERIAL of a device this collector knows");
      const wanted = licenses(ctx.values.license);
      if (!wanted.length) throw new CliError('name the licenses with --license TAG=N (once per license)');
      const hostname = str(ctx.values.hostname);
      const r = (await ctx.api((api) =>
        api('POST', '/cisco/reservations', { vaId: va, ...(requestCode ? { requestCode } : { udi }), licenses: wanted, ...(hostname ? { hostname } : {}) }),
      )) as Reservation;
      ctx.output(r, () => render(r));
    },
  },
  {
    name: 'cisco reservations',
    usage: 'outpost cisco reservations [--va VA]',
    summary: "Reservations and returns made with Cisco's cloud, and whether each code reached its device (--json for the codes)",
    options: { va: { type: 'string' } },
    async run(ctx) {
      const va = str(ctx.values.va);
      const r = (await ctx.api((api) => api('GET', `/cisco/reservations${va ? `?vaId=${encodeURIComponent(va)}` : ''}`))) as { items: Reservation[] };
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['id', (x) => x.id], ['kind', (x) => x.kind], ['device', (x) => x.udi ?? '(request code)'],
              ['licenses', (x) => x.licenses.map((l) => `${l.quantity}× ${l.tag}`).join(', ') || '—'], ['status', (x) => x.message ? `${x.status}: ${x.message}` : x.status],
              ['delivery', delivery], ['made', (x) => shortTime(x.createdAt)],
            ])
          : 'no reservation made yet (outpost cisco reserve)',
      );
    },
  },
];
