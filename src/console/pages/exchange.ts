import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { may, type Caller } from '../session.js';
import { downloadPath, exportSection, uploadSection } from './exchange-operate.js';
import { syncNow, syncRuns, syncTable } from './exchange-syncs.js';

interface ExchangeStatus {
  mode?: string;
  upstream?: string | { kind: string; url: string; domain: string | null } | null;
  lastSuccessAt?: string | null;
  nextRunAt?: string | null;
  running?: boolean;
  lastError?: { code: string; message: string } | null;
  lastRun?: { status: string; startedAt: string; finishedAt: string; parts: number; reports: { sent: number; accepted: number; rejected: number } } | null;
  destinations?: { destination: string; waiting: number; oldestWaitingSince: string | null }[];
}
interface Bundle {
  id: string;
  direction: 'in' | 'out';
  kind: string;
  sequence: number;
  period: string | null;
  records: number;
  createdAt: string;
  answers: string | null;
  forced: boolean;
  outcome: { status: string; by: string | null };
}
interface PolledDevice {
  id: string;
  name: string;
  host: string;
  vaId: string;
  lastPollAt: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  reports: number;
  acks: { pending: number; delivered: number };
}
interface Ack {
  from: string;
  uploadId: string;
  devId: string;
  udi: string | null;
  receivedAt: string;
  deliveredAt: string | null;
  attempts: number;
  lastError: string | null;
}

/** A bundle the collector refused (an upload, or a file in the inbox): an `exchange.rejected` event. */
interface Refusal {
  at: string;
  actor: string;
  subject: string | null;
  details: { code?: string; reason?: string; via?: string };
}
const refusals = () => api<{ items: Refusal[] }>('GET', '/events?type=exchange.rejected&limit=50');

const OUTCOME: Record<string, { text: string; tone: string; icon: string }> = {
  answered: { text: 'Answered', tone: 'ok', icon: 'check' },
  waiting_for_answer: { text: 'Waiting for an answer', tone: 'plain', icon: 'clock' },
  written: { text: 'Written', tone: 'plain', icon: 'check' },
  applied: { text: 'Applied', tone: 'ok', icon: 'check' },
  applied_forced: { text: 'Applied (forced past a check)', tone: 'bad', icon: 'warning' },
  refused: { text: 'Refused', tone: 'bad', icon: 'block' },
};

/** The exchange with the upstream: its status, export and upload (for roles that operate), and the history of bundles. */
export async function exchangePage(main: HTMLElement, caller: Caller): Promise<void> {
  const operate = may(caller, 'operate');
  const [st, bundles, refused, polled, acks] = await Promise.all([
    api<ExchangeStatus>('GET', '/exchange/status'),
    api<{ items: Bundle[] }>('GET', '/exchange/bundles'),
    refusals(),
    api<{ items: PolledDevice[] }>('GET', '/cisco/devices'),
    api<{ items: Ack[] }>('GET', '/cisco/acks'),
  ]);
  const cisco = isCisco(st);
  const connected = st.mode === 'connected';
  const syncs = h('div', { id: 'exchange-syncs' }, connected ? syncTable(await syncRuns(cisco)) : '');

  const statusBox = h('div', { id: 'exchange-status' }, statusList(st));
  const history = h('div', { id: 'exchange-history' }, historyTable(bundles.items, refused.items, operate));
  let answers = 0;
  const reload = async () => {
    const [s, b, r, runs] = await Promise.all([api<ExchangeStatus>('GET', '/exchange/status'), api<{ items: Bundle[] }>('GET', '/exchange/bundles'), refusals(), connected ? syncRuns(cisco) : null]);
    statusBox.replaceChildren(statusList(s));
    if (runs) syncs.replaceChildren(syncTable(runs));
    history.replaceChildren(historyTable(b.items, r.items, operate));
    history.dataset.answer = String(++answers);
  };

  main.replaceChildren(h('h1', {}, 'Exchange'));
  append(main, [
    h('p', { class: 'lede' }, cisco ? "Usage goes to Cisco's cloud; ACKs come back to the devices." : 'Usage goes to the upstream as signed bundles; its response bundles bring ACKs and entitlements back.'),
    h('section', { 'aria-labelledby': 'xstatus-title', class: 'panel' }, h('h2', { id: 'xstatus-title' }, 'Status'), statusBox),
    operate ? exportSection(caller, reload) : null,
    operate ? uploadSection(caller, reload) : null,
    connected ? h('section', { 'aria-labelledby': 'syncs-title' }, h('h2', { id: 'syncs-title' }, 'Syncs'), operate ? syncNow(reload) : null, syncs) : null,
    h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Bundles'), history),
    cisco || polled.items.length || acks.items.length ? ciscoSection(polled.items, acks.items) : null,
  ]);
}

const isCisco = (s: ExchangeStatus) => (typeof s.upstream === 'object' && s.upstream?.kind === 'cisco') || s.destinations?.[0]?.destination === 'cssm';

function statusList(x: ExchangeStatus): HTMLElement {
  const cisco = isCisco(x);
  const where = typeof x.upstream === 'string' ? x.upstream : x.upstream?.url ?? null;
  const pairs: [string, Node | string][] = [
    ['Mode', x.mode === 'connected' ? 'Connected' : x.mode === 'disconnected' ? 'Disconnected (bundles carried by hand)' : x.mode ?? 'unknown'],
    ['Upstream', `${cisco ? "Cisco's cloud" : 'Outpost upstream'}${where ? ` at ${where}` : ''}`],
    ['Last success', when(x.lastSuccessAt)],
    ['Next run', x.running ? 'running now' : x.nextRunAt ? when(x.nextRunAt) : 'not scheduled'],
  ];
  for (const d of x.destinations ?? []) {
    const to = d.destination === 'cssm' ? "Cisco's cloud" : d.destination === 'outpost' ? 'the upstream' : d.destination === 'portal' ? "Cisco's portal (offline upload)" : d.destination;
    pairs.push([`Waiting for an ACK from ${to}`, d.waiting ? `${count(d.waiting)} reports since ${when(d.oldestWaitingSince)}` : 'nothing waiting']);
  }
  if (x.lastError) pairs.push(['Last error', h('span', { class: 'badge tone-bad' }, icon('warning'), h('span', {}, `${x.lastError.code}: ${x.lastError.message}`))]);
  return h('dl', { class: 'pairs' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** Export: a preview of exactly what would leave, then the bundle written, then its download. */

function historyTable(bundles: Bundle[], refused: Refusal[], download: boolean): HTMLElement {
  const byId = new Map(bundles.map((b) => [b.id, b]));
  const rows = [
    ...refused.map((r) => ({ at: r.at, row: refusedRow(r, download) })),
    ...bundles.map((b) => ({ at: b.createdAt, row: bundleRow(b, byId, download) })),
  ].sort((a, b) => b.at.localeCompare(a.at));
  if (!rows.length) return status('No bundle written or applied yet.');
  return h('table', { id: 'bundles' },
    h('caption', { class: 'visually-hidden' }, 'Bundles written and applied, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Bundle'), h('th', { scope: 'col' }, 'Period'), h('th', { scope: 'col' }, 'Carried'),
      h('th', { scope: 'col' }, 'Outcome'), download ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Download')) : null,
    )),
    h('tbody', {}, rows.map((r) => r.row)),
  );
}

function bundleRow(b: Bundle, byId: Map<string, Bundle>, download: boolean): HTMLElement {
  const o = OUTCOME[b.outcome.status] ?? { text: b.outcome.status, tone: 'plain', icon: 'info' };
  const answeredBy = b.outcome.by ? byId.get(b.outcome.by) : undefined;
  const what = b.direction === 'out' ? `${b.kind === 'usage' ? 'Usage' : b.kind} bundle ${b.sequence}, sent` : b.kind === 'response' ? `Response ${b.sequence}, received` : `${b.kind} ${b.sequence}, received`;
  const answered = b.answers ? byId.get(b.answers) : undefined;
  const carried = b.direction === 'out' ? `${count(b.records)} reports` : b.kind === 'response' ? `ACKs for ${count(b.records)} reports${answered ? ` of usage bundle ${answered.sequence}` : ''}` : '';
  return h('tr', { 'data-bundle': b.id, 'data-outcome': b.outcome.status },
    h('td', {}, when(b.createdAt)),
    h('th', { scope: 'row' }, what),
    h('td', {}, b.period ?? ''),
    h('td', { class: 'carried' }, carried),
    h('td', { class: 'outcome' }, h('span', { class: `badge tone-${o.tone}` }, icon(o.icon), h('span', {}, o.text)), answeredBy ? h('span', {}, ` by response ${answeredBy.sequence}`) : null),
    download ? h('td', {}, h('a', { href: downloadPath(b.id), download: '', 'aria-label': `Download ${what}` }, 'Download')) : null,
  );
}

function refusedRow(r: Refusal, download: boolean): HTMLElement {
  const o = OUTCOME.refused!;
  const how = r.details.via === 'upload' ? `Upload by ${r.actor.replace(/^user:/, '')}` : 'File in the inbox';
  return h('tr', { 'data-outcome': 'refused', class: 'refused' },
    h('td', {}, when(r.at)),
    h('th', { scope: 'row' }, `${how}: ${r.subject ?? ''}`),
    h('td', {}, ''),
    h('td', { class: 'carried' }, 'nothing applied'),
    h('td', { class: 'outcome' }, h('span', { class: `badge tone-${o.tone}` }, icon(o.icon), h('span', {}, o.text)), h('span', {}, ` ${r.details.code ?? ''}: ${r.details.reason ?? ''}`)),
    download ? h('td', {}, '') : null,
  );
}

/** Cisco's side: the IOS-XE devices polled for their usage, and the ACKs still to deliver to them. */
function ciscoSection(devices: PolledDevice[], acks: Ack[]): HTMLElement {
  const pending = acks.filter((a) => a.deliveredAt === null);
  return h('section', { 'aria-labelledby': 'cisco-title', id: 'cisco' },
    h('h2', { id: 'cisco-title' }, 'Cisco devices and ACKs'),
    devices.length
      ? h('table', { id: 'polled-devices' },
          h('caption', {}, 'IOS-XE devices polled for their usage'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Last poll'), h('th', { scope: 'col' }, 'Last success'), h('th', { scope: 'col', class: 'num' }, 'Reports'), h('th', { scope: 'col', class: 'num' }, 'ACKs waiting'), h('th', { scope: 'col' }, 'Last error'))),
          h('tbody', {}, devices.map((d) =>
            h('tr', { 'data-polled': d.id },
              h('th', { scope: 'row' }, d.name), h('td', {}, d.host), h('td', {}, when(d.lastPollAt)), h('td', {}, when(d.lastSuccessAt)),
              h('td', { class: 'num' }, count(d.reports)), h('td', { class: 'num' }, count(d.acks.pending)), h('td', {}, d.lastError ?? ''),
            ),
          )),
        )
      : status('No IOS-XE device is polled.'),
    pending.length
      ? h('table', { id: 'pending-acks' },
          h('caption', {}, 'ACKs not yet delivered to their device'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Received'), h('th', { scope: 'col', class: 'num' }, 'Attempts'), h('th', { scope: 'col' }, 'Last error'))),
          h('tbody', {}, pending.map((a) =>
            h('tr', {},
              h('th', { scope: 'row' }, a.udi ?? a.devId), h('td', {}, a.from === 'cssm' ? "Cisco's cloud" : 'the portal'), h('td', {}, when(a.receivedAt)),
              h('td', { class: 'num' }, count(a.attempts)), h('td', {}, a.lastError ?? ''),
            ),
          )),
        )
      : status('No ACK waits to be delivered.'),
  );
}
