import { api } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { may, type Caller } from '../session.js';
import type { Va } from '../types.js';

interface TagCompliance {
  tag: string;
  displayName: string;
  owned: number | null;
  inUse: number;
  devices: number;
  status: 'in_compliance' | 'shortage' | 'expired' | 'not_authorized';
  short: number;
}
interface VaCompliance {
  vaId: string;
  vaName: string;
  tags: TagCompliance[];
}
interface Alert {
  id: number;
  kind: string;
  subject: string;
  severity: string;
  message: string;
  firstSeenAt: string;
  acknowledged: { at: string; by: string } | null;
}
interface ExchangeStatus {
  mode?: string;
  upstream?: string | null;
  lastSuccessAt?: string | null;
  lastAttemptAt?: string | null;
  nextRunAt?: string | null;
  running?: boolean;
  lastError?: { code: string; message: string } | null;
  destinations?: { destination: string; waiting: number; oldestWaitingSince: string | null }[];
}

const DEVICE_STATUSES = ['active', 'stale', 'deregistered'] as const;
/** Counted by listing, one page each, until the overview route counts them server-side. */
const DEVICE_PAGE = 1000;

const STATUS_TEXT: Record<TagCompliance['status'], { text: string; icon: string; tone: string }> = {
  in_compliance: { text: 'In compliance', icon: 'check', tone: 'ok' },
  shortage: { text: 'Shortage', icon: 'warning', tone: 'bad' },
  expired: { text: 'Expired', icon: 'clock', tone: 'bad' },
  not_authorized: { text: 'Not authorized', icon: 'block', tone: 'bad' },
};

/** Shortages first, the largest first; then by account and license name. */
export function shortagesFirst(a: { vaName: string; t: TagCompliance }, b: { vaName: string; t: TagCompliance }): number {
  const bad = (x: TagCompliance) => (x.status === 'in_compliance' ? 0 : 1);
  return bad(b.t) - bad(a.t) || b.t.short - a.t.short || a.vaName.localeCompare(b.vaName) || a.t.displayName.localeCompare(b.t.displayName);
}

export async function overviewPage(main: HTMLElement, caller: Caller): Promise<void> {
  // Exchange status is a collector-wide route: a VA-scoped role is not offered it.
  const exchangeShown = may(caller, 'read');
  const [vas, compliance, devices, alerts, exchange] = await Promise.all([
    api<{ items: Va[] }>('GET', '/virtual-accounts'),
    api<{ items: VaCompliance[] }>('GET', '/compliance'),
    Promise.all(DEVICE_STATUSES.map((s) => api<{ items: unknown[]; nextCursor: string | null }>('GET', `/devices?status=${s}&limit=${DEVICE_PAGE}`))),
    api<{ items: Alert[]; nextCursor: string | null }>('GET', '/alerts?state=open&limit=100'),
    exchangeShown ? api<ExchangeStatus>('GET', '/exchange/status') : Promise.resolve(null),
  ]);
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));
  const rows = compliance.items.flatMap((c) => c.tags.map((t) => ({ vaId: c.vaId, vaName: vaName.get(c.vaId) ?? c.vaName, t }))).sort(shortagesFirst);
  const short = rows.filter((r) => r.t.status !== 'in_compliance');
  const deviceCounts = devices.map((d) => ({ n: d.items.length, more: d.nextCursor !== null }));
  const waiting = exchange?.destinations?.reduce((s, d) => s + d.waiting, 0) ?? null;

  main.replaceChildren(
    h('h1', {}, 'Overview'),
    h('p', { class: 'lede' }, vas.items.length === 1 ? `Virtual account ${vas.items[0]!.name}` : `${vas.items.length} virtual accounts`),
    h('ul', { class: 'cards', 'aria-label': 'At a glance' },
      card('Licenses short', String(short.length), short.length ? 'warning' : 'check', short.length ? 'bad' : 'ok', 'summary-short'),
      card('Open alerts', count(alerts.items.length) + (alerts.nextCursor ? '+' : ''), alerts.items.length ? 'bell' : 'check', alerts.items.length ? 'bad' : 'ok', 'summary-alerts'),
      card('Active devices', count(deviceCounts[0]!.n) + (deviceCounts[0]!.more ? '+' : ''), 'device', 'plain', 'summary-devices'),
      waiting === null ? null : card('Reports waiting for an ACK', count(waiting), waiting ? 'clock' : 'check', 'plain', 'summary-waiting'),
    ),
    complianceSection(rows),
    h('div', { class: 'columns' }, devicesSection(deviceCounts), exchange ? exchangeSection(exchange) : null),
    alertsSection(alerts.items, alerts.nextCursor !== null),
  );
}

function card(label: string, value: string, iconName: string, tone: string, id: string): HTMLElement {
  return h('li', { class: `card tone-${tone}`, id }, icon(iconName), h('span', { class: 'card-value' }, value), h('span', { class: 'card-label' }, label));
}

function complianceSection(rows: { vaId: string; vaName: string; t: TagCompliance }[]): HTMLElement {
  const body = rows.length
    ? h('table', { class: 'compliance', id: 'compliance' },
        h('caption', {}, 'Owned against in use, per virtual account and license; shortages first'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'License'), h('th', { scope: 'col', class: 'bar-col' }, 'In use against owned'), h('th', { scope: 'col', class: 'num' }, 'In use'), h('th', { scope: 'col', class: 'num' }, 'Owned'), h('th', { scope: 'col' }, 'Status'))),
        h('tbody', {}, rows.map((r) => {
          const s = STATUS_TEXT[r.t.status];
          return h('tr', { 'data-va': r.vaId, 'data-tag': r.t.tag, class: `tone-${s.tone}` },
            h('td', { class: 'va' }, r.vaName),
            h('th', { scope: 'row', class: 'license', title: r.t.tag }, r.t.displayName),
            h('td', { class: 'bar-col' }, bar(r.t)),
            h('td', { class: 'num in-use' }, count(r.t.inUse)),
            h('td', { class: 'num owned' }, r.t.owned === null ? 'unlimited' : count(r.t.owned)),
            h('td', { class: 'status' }, h('span', { class: `badge tone-${s.tone}` }, icon(s.icon), h('span', {}, s.text)), r.t.short ? h('span', { class: 'short' }, ` short by ${count(r.t.short)}`) : null),
          );
        })),
      )
    : status('No license is owned or in use yet.');
  return h('section', { 'aria-labelledby': 'compliance-title' }, h('h2', { id: 'compliance-title' }, 'Compliance'), body);
}

/** Owned as the track with a mark at its end, in use as the fill; what is over the mark is hatched, so it reads without colour. */
function bar(t: TagCompliance): HTMLElement {
  const scale = Math.max(t.owned ?? t.inUse, t.inUse, 1);
  const pct = (n: number) => `${((100 * n) / scale).toFixed(2)}%`;
  const within = t.owned === null ? t.inUse : Math.min(t.inUse, t.owned);
  const label = t.owned === null ? `${t.inUse} in use, unlimited owned` : `${t.inUse} in use of ${t.owned} owned`;
  const el = h('div', { class: 'bar', role: 'img', 'aria-label': label });
  const owned = h('span', { class: 'bar-owned' });
  owned.style.width = t.owned === null ? '100%' : pct(t.owned);
  const use = h('span', { class: 'bar-use' });
  use.style.width = pct(within);
  el.append(owned, use);
  if (t.owned !== null && t.inUse > t.owned) {
    const over = h('span', { class: 'bar-over' });
    over.style.left = pct(t.owned);
    over.style.width = pct(t.inUse - t.owned);
    const mark = h('span', { class: 'bar-mark' });
    mark.style.left = pct(t.owned);
    el.append(over, mark);
  }
  return el;
}

function devicesSection(counts: { n: number; more: boolean }[]): HTMLElement {
  return h('section', { 'aria-labelledby': 'devices-title', class: 'panel' },
    h('h2', { id: 'devices-title' }, 'Devices by status'),
    h('dl', { class: 'pairs', id: 'device-counts' }, DEVICE_STATUSES.flatMap((s, i) => [
      h('dt', {}, icon(s === 'active' ? 'check' : s === 'stale' ? 'clock' : 'block'), h('span', {}, s[0]!.toUpperCase() + s.slice(1))),
      h('dd', { 'data-status': s }, count(counts[i]!.n) + (counts[i]!.more ? '+' : '')),
    ])),
  );
}

function exchangeSection(x: ExchangeStatus): HTMLElement {
  const kind = x.destinations?.[0]?.destination === 'cssm' ? "Cisco's cloud" : 'Outpost upstream';
  const pairs: [string, Node | string][] = [
    ['Mode', x.mode ?? 'unknown'],
    ['Upstream', x.upstream ? `${kind} at ${x.upstream}` : kind],
    ['Last success', when(x.lastSuccessAt)],
    ['Next run', x.running ? 'running now' : x.nextRunAt ? when(x.nextRunAt) : 'not scheduled'],
  ];
  for (const d of x.destinations ?? []) {
    pairs.push([`Waiting for ${d.destination === 'cssm' ? 'Cisco' : d.destination}`, d.waiting ? `${count(d.waiting)} reports since ${when(d.oldestWaitingSince)}` : 'nothing waiting']);
  }
  if (x.lastError) pairs.push(['Last error', h('span', { class: 'badge tone-bad' }, icon('warning'), h('span', {}, `${x.lastError.code}: ${x.lastError.message}`))]);
  return h('section', { 'aria-labelledby': 'exchange-title', class: 'panel', id: 'exchange' },
    h('h2', { id: 'exchange-title' }, 'Exchange'),
    h('dl', { class: 'pairs' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  );
}

function alertsSection(alerts: Alert[], more: boolean): HTMLElement {
  const body = alerts.length
    ? h('ul', { class: 'alerts', id: 'alerts' }, alerts.map((a) =>
        h('li', { class: `alert severity-${a.severity}` },
          h('span', { class: `badge tone-${a.severity === 'info' ? 'plain' : 'bad'}` }, icon(a.severity === 'critical' ? 'block' : a.severity === 'info' ? 'info' : 'warning'), h('span', {}, a.severity)),
          h('span', { class: 'alert-message' }, a.message),
          h('span', { class: 'alert-meta' }, `since ${when(a.firstSeenAt)}${a.acknowledged ? ` · acknowledged by ${a.acknowledged.by}` : ''}`),
        ),
      ))
    : status('No open alert.');
  return h('section', { 'aria-labelledby': 'alerts-title' }, h('h2', { id: 'alerts-title' }, 'Open alerts'), body, more ? h('p', {}, 'Only the newest 100 are shown.') : null);
}
