import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { may, mayAnywhere, vasWith, type Caller } from '../session.js';
import type { Va } from '../types.js';
import { transferForm, type Holding } from './transfers-form.js';
import { openSettleDialog } from './transfers-settle.js';

/** A transfer as GET /licenses/transfers answers. */
export interface Transfer {
  id: string;
  fromVaId: string;
  toVaId: string;
  tag: string;
  quantity: number;
  reason: string | null;
  state: 'provisional' | 'confirmed' | 'refused';
  requestedBy: string;
  requestedAt: string;
  settledAt: string | null;
  refusal: string | null;
  settledBy: 'manual' | 'upstream' | null;
  settleReason: string | null;
  ciscoAcceptedAt: string | null;
  /** The lines it took from the source, each with the license's name. */
  lines: { displayName: string }[];
}
interface TransferList {
  items: Transfer[];
  nextCursor: string | null;
  upstream: 'outpost' | 'cisco';
}
interface VaCompliance {
  vaId: string;
  tags: { tag: string; displayName: string; owned: number | null; inUse: number }[];
}
interface SettledEvent {
  subject: string | null;
  actor: string;
  details: { by?: string };
}

const REVERTED_BY_HAND = 'reverted by hand: ';
/** Manual settlements are rare: the newest this many name who settled; an older one is asked for on its own. */
const SETTLED_EVENTS = 200;

/** Offered to a caller who may read licenses on some VA; a VA-scoped one sees the transfers touching its VAs. */
export const transfersOffered = (c: Caller) => mayAnywhere(c, 'read');

/** The address of the form with a source and license chosen (the Licenses page links to it). */
export const transferLink = (vaId: string, tag: string) => `#/transfers/${encodeURIComponent(vaId)}/${encodeURIComponent(tag)}`;

function prefillFromAddress(): { from?: string; tag?: string } {
  const [, from, tag] = location.hash.replace(/^#\//, '').split('/');
  return { ...(from ? { from: decodeURIComponent(from) } : {}), ...(tag ? { tag: decodeURIComponent(tag) } : {}) };
}

/**
 * Transfers: every license transfer the caller may see, newest first, with its state, how it
 * was settled and the upstream's side; the request form and settling by hand for a caller who
 * may operate on both VAs.
 */
export async function transfersPage(main: HTMLElement, caller: Caller): Promise<void> {
  const notice = h('div', { id: 'transfers-notice', 'data-answer': '0' });
  const formBox = h('div', { id: 'transfer-form-box' });
  const listBox = h('div', { id: 'transfers-results' });
  let answers = 0;
  const say = (said: HTMLElement) => {
    notice.replaceChildren(said);
    notice.dataset.answer = String(++answers);
  };
  /** Reads everything again first, then says what happened: the notice never runs ahead of the page. */
  const settle = async (said: HTMLElement, prefill = prefillFromAddress()) => {
    try {
      await load(prefill);
    } finally {
      say(said);
    }
  };
  const load = async (prefill: { from?: string | undefined; tag?: string | undefined }) => {
    const [vas, list, compliance, others] = await Promise.all([
      api<{ items: Va[] }>('GET', '/virtual-accounts'),
      api<TransferList>('GET', '/licenses/transfers'),
      api<{ items: VaCompliance[] }>('GET', '/compliance'),
      // A VA-scoped caller sees transfers to or from VAs it holds no role on: those it knows by name only.
      may(caller, 'read') ? Promise.resolve({ items: [] as Va[] }) : api<{ items: Va[] }>('GET', '/access/virtual-accounts'),
    ]);
    const names = new Map([...others.items, ...vas.items].map((v) => [v.id, v.name]));
    const holdings: Holding[] = compliance.items.flatMap((c) => c.tags.map((t) => ({ vaId: c.vaId, ...t })));
    const settlers = await whoSettled(list.items);
    const operable = vasWith(caller, 'operate');
    const mine = vas.items.filter((v) => operable === 'all' || operable.includes(v.id)).sort((a, b) => a.name.localeCompare(b.name));
    formBox.replaceChildren(mine.length >= 2
      ? transferForm({ vas: mine, holdings, prefill, done: settle, say })
      : h('p', { id: 'transfer-not-offered' }, 'Requesting or settling a transfer needs a role that may operate on both virtual accounts; yours let you see the transfers only.'));
    const view: RowView = {
      name: (id) => names.get(id) ?? id,
      settler: (t) => settlers.get(t.id) ?? null,
      upstream: list.upstream,
      // Settled by hand only by a caller who may operate on both VAs, as the collector requires.
      onSettle: (t) => (may(caller, 'operate', t.fromVaId) && may(caller, 'operate', t.toVaId) ? (what) => openSettleDialog(t, what, names.get(t.fromVaId) ?? t.fromVaId, main, (said) => settle(said)) : null),
    };
    listBox.replaceChildren(list.items.length ? transferTable(list.items, view) : status('No license has been transferred between virtual accounts yet.'));
    listBox.dataset.answer = String(Number(listBox.dataset.answer ?? 0) + 1);
  };
  await load(prefillFromAddress());
  main.replaceChildren(h('h1', {}, 'Transfers'));
  append(main, [
    h('p', { class: 'lede' }, 'License transfers between virtual accounts, newest first: provisional until the upstream confirms or refuses them.'),
    notice,
    formBox,
    h('section', { 'aria-labelledby': 'transfers-title' }, h('h2', { id: 'transfers-title' }, 'Transfers'), listBox),
  ]);
}

/** Who settled each transfer settled by hand, from the audit trail (the transfer keeps only that it was by hand). */
async function whoSettled(items: Transfer[]): Promise<Map<string, string>> {
  const manual = items.filter((t) => t.settledBy === 'manual');
  const found = new Map<string, string>();
  if (!manual.length) return found;
  const by = (e: SettledEvent) => e.details.by ?? e.actor;
  const recent = await api<{ items: SettledEvent[] }>('GET', `/events?type=license.transfer_settled&limit=${SETTLED_EVENTS}`);
  for (const e of recent.items) if (e.subject && !found.has(e.subject)) found.set(e.subject, by(e));
  // A shorter answer holds every settlement the caller may see: one missing is in a VA out of its sight.
  if (recent.items.length < SETTLED_EVENTS) return found;
  await Promise.all(manual.filter((t) => !found.has(t.id)).map(async (t) => {
    const one = await api<{ items: SettledEvent[] }>('GET', `/events?type=license.transfer_settled&subject=${encodeURIComponent(t.id)}&limit=1`);
    if (one.items[0]) found.set(t.id, by(one.items[0]));
  }));
  return found;
}

interface RowView {
  name: (vaId: string) => string;
  settler: (t: Transfer) => string | null;
  upstream: 'outpost' | 'cisco';
  /** The action that opens the settle dialog, or null when the caller may not settle it. */
  onSettle: (t: Transfer) => ((what: string) => void) | null;
}

/** Named as the source's lines named it: the caller may see neither VA's licenses any more. */
const licenseName = (t: Transfer) => t.lines[0]?.displayName ?? t.tag;
const stamp = (iso: string) => h('time', { datetime: iso }, when(iso));
const person = (actor: string) => actor.replace(/^user:/, '').replace(/ \(session .*\)$/, '');

function stateBadge(t: Transfer): HTMLElement {
  const [tone, mark, text] =
    t.state === 'provisional' ? ['plain', 'clock', 'Provisional']
    : t.state === 'confirmed' ? ['ok', 'check', 'Confirmed']
    : t.refusal?.startsWith(REVERTED_BY_HAND) ? ['bad', 'block', 'Reverted']
    : ['bad', 'block', 'Refused, reverted'];
  return h('span', { class: `badge tone-${tone}` }, icon(mark), h('span', {}, text));
}

/** How it was settled and by whom: the upstream's answer, or an operator's by hand with the reason. */
function settledCell(t: Transfer, v: RowView): (Node | string)[] {
  if (t.state === 'provisional' || !t.settledAt) return ['Not yet'];
  if (t.settledBy === 'manual') {
    const who = v.settler(t);
    return [`By hand${who ? ` by ${person(who)}` : ''}, `, stamp(t.settledAt), ': ', h('q', { class: 'reason' }, t.settleReason ?? '')];
  }
  if (t.state === 'confirmed') return ['Confirmed by the upstream, ', stamp(t.settledAt)];
  return ['Refused by the upstream, ', stamp(t.settledAt), ': ', h('q', { class: 'reason' }, t.refusal ?? 'no reason given')];
}

/** The upstream's side: what it has of the transfer, and a Cisco call already accepted named as one Cisco may still apply. */
function upstreamCell(t: Transfer, v: RowView): HTMLElement {
  if (t.ciscoAcceptedAt) {
    const text = t.state !== 'confirmed' ? ['Cisco accepted its call on ', stamp(t.ciscoAcceptedAt), ': Cisco may still apply it.']
      : t.settledBy === 'manual' ? ['Cisco accepted its call on ', stamp(t.ciscoAcceptedAt), '; confirmed by hand.']
      : ['Cisco accepted its call on ', stamp(t.ciscoAcceptedAt), ' and shows it.'];
    return h('td', { class: `upstream${t.state === 'confirmed' ? '' : ' cisco-may-apply'}`, 'data-side': 'cisco-accepted' },
      t.state === 'confirmed' ? null : icon('warning'), ...text);
  }
  const side = t.state === 'provisional'
    ? v.upstream === 'cisco' ? "Cisco's cloud: sent through Cisco's transfer call at the next sync." : 'Outpost upstream: travels in the next usage bundle or sync.'
    : t.settledBy === 'manual' ? 'Never sent again.'
    : `Answered by the ${v.upstream === 'cisco' ? "Cisco's cloud" : 'Outpost upstream'}.`;
  return h('td', { class: 'upstream', 'data-side': t.state === 'provisional' ? `waiting-${v.upstream}` : 'settled' }, side);
}

function transferTable(items: Transfer[], v: RowView): HTMLElement {
  return h('table', { id: 'transfers' },
    h('caption', { class: 'visually-hidden' }, 'License transfers, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Requested, by'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'From → to'),
      h('th', { scope: 'col' }, 'License'), h('th', { scope: 'col', class: 'num' }, 'Quantity'),
      h('th', { scope: 'col' }, 'Settled'), h('th', { scope: 'col' }, 'Upstream'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
    )),
    h('tbody', {}, items.map((t) => {
      const what = `${count(t.quantity)} ${licenseName(t)} from ${v.name(t.fromVaId)} to ${v.name(t.toVaId)}`;
      const act = t.state === 'provisional' ? v.onSettle(t) : null;
      return h('tr', { 'data-transfer': t.id, 'data-state': t.state },
        h('th', { scope: 'row', class: 'requested' }, stamp(t.requestedAt), h('span', { class: 'asked-by' }, ' by ', h('span', { class: 'by' }, person(t.requestedBy)))),
        h('td', { class: 'state' }, stateBadge(t)),
        h('td', { class: 'vas' }, h('span', { class: 'from' }, v.name(t.fromVaId)), ' → ', h('span', { class: 'to' }, v.name(t.toVaId))),
        h('td', { class: 'license' }, h('span', { class: 'name' }, licenseName(t)), h('span', { class: 'tag' }, t.tag),
          t.reason ? h('span', { class: 'asked-reason' }, '“', t.reason, '”') : null),
        h('td', { class: 'num quantity' }, count(t.quantity)),
        h('td', { class: 'settled' }, ...settledCell(t, v)),
        upstreamCell(t, v),
        h('td', { class: 'actions' }, act
          ? h('button', { type: 'button', class: 'settle', onclick: () => act(what) }, h('span', {}, 'Settle…'), h('span', { class: 'visually-hidden' }, ` the transfer of ${what}`))
          : null),
      );
    })),
  );
}
