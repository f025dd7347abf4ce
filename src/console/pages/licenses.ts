import { api } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { may, vasWith, type Caller } from '../session.js';
import { transferLink } from './transfers.js';
import { usageChart, type ChartDay, type ChartForecast } from './usage-chart.js';
import type { Va } from '../types.js';

interface TagCompliance {
  tag: string;
  displayName: string;
  owned: number | null;
  inUse: number;
  status: 'in_compliance' | 'shortage' | 'expired' | 'not_authorized';
  short: number;
}
interface VaCompliance {
  vaId: string;
  vaName: string;
  tags: TagCompliance[];
}
interface Forecast extends ChartForecast {
  vaId: string;
  tag: string;
}
interface Line {
  id: string;
  tag: string;
  kind: string;
  quantity: number;
  startsAt: string;
  endsAt: string | null;
}

const STATUS_TEXT: Record<TagCompliance['status'], { text: string; icon: string; tone: string }> = {
  in_compliance: { text: 'In compliance', icon: 'check', tone: 'ok' },
  shortage: { text: 'Shortage', icon: 'warning', tone: 'bad' },
  expired: { text: 'Expired', icon: 'clock', tone: 'bad' },
  not_authorized: { text: 'Not authorized', icon: 'block', tone: 'bad' },
};

/** Available is what is owned and not in use; never below zero (a shortage says by how much). */
export const available = (t: { owned: number | null; inUse: number }): string => (t.owned === null ? 'unlimited' : count(Math.max(0, t.owned - t.inUse)));

/**
 * Licenses: per VA and tag what is owned, in use and available, then for one of them its daily
 * history as a chart with the owned quantity and the forecast crossing, and its entitlement lines.
 */
export async function licensesPage(main: HTMLElement, caller: Caller): Promise<void> {
  const [vas, compliance, forecasts] = await Promise.all([
    api<{ items: Va[] }>('GET', '/virtual-accounts'),
    api<{ items: VaCompliance[] }>('GET', '/compliance'),
    api<{ items: Forecast[] }>('GET', '/usage/forecast'),
  ]);
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));
  const rows = compliance.items
    .flatMap((c) => c.tags.map((t) => ({ vaId: c.vaId, vaName: vaName.get(c.vaId) ?? c.vaName, t })))
    .sort((a, b) => a.vaName.localeCompare(b.vaName) || a.t.displayName.localeCompare(b.t.displayName));
  const csvLink = h('a', { id: 'licenses-csv', class: 'button-link', href: '/api/v1/licenses.csv', download: '' }, h('span', {}, 'Download CSV'));

  main.replaceChildren(
    h('h1', {}, 'Licenses'),
    h('p', { class: 'lede' }, 'Per virtual account and license: owned, in use and available, and how use has moved day by day.'),
    h('section', { 'aria-labelledby': 'licenses-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'licenses-title' }, 'Owned and in use'), csvLink),
      rows.length ? licenseTable(rows, transferable(caller, vas.items)) : status('No license is owned or in use yet.'),
    ),
  );
  if (!rows.length) return;

  const key = (r: { vaId: string; t: { tag: string } }) => `${r.vaId}\n${r.t.tag}`;
  // The first shortage, if any, is the history an operator most likely came for.
  const initial = rows.find((r) => r.t.status !== 'in_compliance') ?? rows[0]!;
  const choice = h('select', { id: 'history-choice', name: 'license' },
    rows.map((r) => h('option', { value: key(r), selected: r === initial }, `${r.vaName} · ${r.t.displayName}`)));
  const detail = h('div', { id: 'history-detail' });
  const show = async () => {
    const r = rows.find((x) => key(x) === choice.value)!;
    const [hist, lines] = await Promise.all([
      api<{ items: ChartDay[] }>('GET', `/usage/history?${new URLSearchParams({ vaId: r.vaId, tag: r.t.tag })}`),
      api<{ items: Line[] }>('GET', `/virtual-accounts/${encodeURIComponent(r.vaId)}/entitlements`),
    ]);
    const f = forecasts.items.find((x) => x.vaId === r.vaId && x.tag === r.t.tag) ?? null;
    detail.replaceChildren(
      usageChart(`${r.vaName} · ${r.t.displayName}`, hist.items, f, r.t.owned),
      linesTable(lines.items.filter((l) => l.tag === r.t.tag)),
    );
    detail.dataset.answer = key(r);
  };
  choice.addEventListener('change', () => void show().catch((e: unknown) => detail.replaceChildren(status(`The history could not be loaded: ${(e as Error).message}`, 'error'))));
  await show();
  main.append(
    h('section', { 'aria-labelledby': 'history-title', class: 'panel', id: 'history' },
      h('h2', { id: 'history-title' }, 'In use over time'),
      h('p', { class: 'field' }, h('label', { for: 'history-choice' }, 'License'), choice),
      detail,
    ),
  );
}

/** Whether a row links to the transfer form: a quantity owned, and the caller operates on its VA and another. */
function transferable(caller: Caller, vas: Va[]): (vaId: string, t: TagCompliance) => boolean {
  const operable = vasWith(caller, 'operate');
  const n = operable === 'all' ? vas.length : vas.filter((v) => operable.includes(v.id)).length;
  return (vaId, t) => n >= 2 && t.owned !== null && t.owned > 0 && may(caller, 'operate', vaId);
}

function licenseTable(rows: { vaId: string; vaName: string; t: TagCompliance }[], canTransfer: (vaId: string, t: TagCompliance) => boolean): HTMLElement {
  return h('table', { id: 'licenses' },
    h('caption', { class: 'visually-hidden' }, 'Licenses per virtual account'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'License'), h('th', { scope: 'col' }, 'Tag'),
      h('th', { scope: 'col', class: 'num' }, 'Owned'), h('th', { scope: 'col', class: 'num' }, 'In use'), h('th', { scope: 'col', class: 'num' }, 'Available'),
      h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
    )),
    h('tbody', {}, rows.map((r) => {
      const s = STATUS_TEXT[r.t.status];
      return h('tr', { 'data-va': r.vaId, 'data-tag': r.t.tag, class: `tone-${s.tone}` },
        h('td', { class: 'va' }, r.vaName),
        h('th', { scope: 'row' }, r.t.displayName),
        h('td', { class: 'tag' }, r.t.tag),
        h('td', { class: 'num owned' }, r.t.owned === null ? 'unlimited' : count(r.t.owned)),
        h('td', { class: 'num in-use' }, count(r.t.inUse)),
        h('td', { class: 'num available' }, available(r.t)),
        h('td', { class: 'status' }, h('span', { class: `badge tone-${s.tone}` }, icon(s.icon), h('span', {}, s.text)), r.t.short ? h('span', { class: 'short' }, ` short by ${count(r.t.short)}`) : null),
        h('td', { class: 'actions' }, canTransfer(r.vaId, r.t)
          ? h('a', { href: transferLink(r.vaId, r.t.tag), class: 'transfer-link' }, 'Transfer…', h('span', { class: 'visually-hidden' }, ` ${r.t.displayName} from ${r.vaName}`))
          : null),
      );
    })),
  );
}

function linesTable(lines: Line[]): HTMLElement {
  if (!lines.length) return status('No entitlement line: this license is in use without being owned.');
  const now = Date.now();
  const valid = (l: Line) => (Date.parse(l.startsAt) > now ? 'not yet valid' : l.endsAt && Date.parse(l.endsAt) <= now ? 'expired' : 'valid');
  return h('table', { id: 'entitlements' },
    h('caption', {}, 'Entitlement lines'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col', class: 'num' }, 'Quantity'), h('th', { scope: 'col' }, 'Valid from'), h('th', { scope: 'col' }, 'Valid until'), h('th', { scope: 'col' }, 'Validity'))),
    h('tbody', {}, lines.map((l) =>
      h('tr', { 'data-line': l.id },
        h('th', { scope: 'row' }, l.kind),
        h('td', { class: 'num' }, count(l.quantity)),
        h('td', {}, when(l.startsAt)),
        h('td', {}, l.endsAt ? when(l.endsAt) : 'no end'),
        h('td', {}, valid(l)),
      ),
    )),
  );
}
