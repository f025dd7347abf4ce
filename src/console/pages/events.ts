import { api } from '../api.js';
import { keysetPager } from '../pager.js';
import { append, h, status } from '../dom.js';
import { when } from '../format.js';
import { may, type Caller } from '../session.js';
import { verifyPanel, type TrailReport } from './trail-panel.js';

interface Va {
  id: string;
  name: string;
}
interface Event {
  id: number;
  at: string;
  type: string;
  actor: string;
  subject: string | null;
  vaId: string | null;
  details: Record<string, unknown>;
  origin: string | null;
}
interface EventList {
  items: Event[];
  nextCursor: string | null;
}

/** A page of the trail: the collector pages the rest by event id. */
export const EVENT_PAGE_SIZE = 25;

export interface EventFilters {
  type: string;
  subject: string;
  actor: string;
  vaId: string;
  /** As a datetime-local field gives them: the browser's local time, to the minute. */
  since: string;
  until: string;
}

/** The filters as the list and its CSV both take them; local times become instants. */
export function eventQuery(f: EventFilters): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of ['type', 'subject', 'actor', 'vaId'] as const) if (f[k].trim()) p.set(k, f[k].trim());
  for (const k of ['since', 'until'] as const) {
    const t = f[k] ? new Date(f[k]) : null;
    if (t && !Number.isNaN(t.getTime())) p.set(k, t.toISOString());
  }
  return p;
}

/**
 * The audit trail, newest first: filtered and paged on the collector, with a CSV of the same
 * filter and the chain check's result. The check reads the whole trail, so it is asked for
 * beside the list rather than before it: a long trail never holds the page up.
 */
export async function eventsPage(main: HTMLElement, caller: Caller): Promise<void> {
  const vas = await api<{ items: Va[] }>('GET', '/virtual-accounts');
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));

  const input = (id: string, name: string, attrs: Record<string, string | number> = {}) =>
    h('input', { id, name, maxlength: 200, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const type = input('event-type', 'type', { placeholder: 'device.*', 'aria-describedby': 'event-type-help' });
  const subject = input('event-subject', 'subject');
  const actor = input('event-actor', 'actor', { placeholder: 'user:ada', 'aria-describedby': 'event-actor-help' });
  const since = h('input', { id: 'event-since', name: 'since', type: 'datetime-local' });
  const until = h('input', { id: 'event-until', name: 'until', type: 'datetime-local' });
  const va = h('select', { id: 'event-va', name: 'vaId' }, h('option', { value: '' }, 'All'), vas.items.map((v) => h('option', { value: v.id }, v.name)));
  const field = (label: string, control: HTMLElement, cls = 'field') => h('p', { class: cls }, h('label', { for: control.id }, label), control);
  const form = h('form', { class: 'inline-form', id: 'event-search', role: 'search', 'aria-label': 'Filter events', novalidate: true },
    field('Type', type), field('Subject', subject), field('Actor', actor), field('Virtual account', va), field('From', since), field('Until', until),
    h('p', { class: 'field' }, h('button', { type: 'submit', class: 'primary' }, h('span', {}, 'Apply filters'))),
  );
  const csv = h('a', { id: 'events-csv', class: 'button-link', href: '/api/v1/events.csv', download: '' }, h('span', {}, 'Download CSV'));
  const summary = h('p', { id: 'events-summary', role: 'status' });
  const results = h('div', { id: 'events-results' });
  const prev = h('button', { type: 'button', id: 'events-prev' }, h('span', {}, 'Newer events'));
  const next = h('button', { type: 'button', id: 'events-next' }, h('span', {}, 'Older events'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Event pages' }, prev, next);

  const { load, restart } = keysetPager<Event>({
    fetch: (cursor) => {
      const p = eventQuery({ type: type.value, subject: subject.value, actor: actor.value, vaId: va.value, since: since.value, until: until.value });
      const qs = p.toString();
      csv.setAttribute('href', `/api/v1/events.csv${qs ? `?${qs}` : ''}`);
      p.set('limit', String(EVENT_PAGE_SIZE));
      if (cursor) p.set('cursor', cursor);
      return api<EventList>('GET', `/events?${p}`);
    },
    draw: (items) => eventTable(items, vaName),
    noun: 'events', after: ' of those matching, newest first', more: '; older ones on the next page', pageSize: EVENT_PAGE_SIZE, results, summary, prev, next,
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void restart();
  });
  // Choices apply at once; typed text waits for Enter or the button.
  for (const c of [va, since, until]) c.addEventListener('change', () => void restart());

  await load();
  // The chain check is a global read: a role on some VAs only is not offered it (the API would refuse).
  const verify = may(caller, 'read') ? verifyPanel(() => api<TrailReport>('GET', '/events/verify')) : null;
  main.replaceChildren();
  append(main, [
    h('h1', {}, 'Events'),
    h('p', { class: 'lede' }, 'The audit trail: every change, who made it and from where, newest first. Each event carries the hash of the one before it.'),
    verify,
    h('section', { 'aria-labelledby': 'event-search-title', class: 'panel' },
      h('h2', { id: 'event-search-title' }, 'Filter'),
      form,
      h('p', { class: 'help', id: 'event-type-help' }, 'Type: a whole type (device.moved) or a prefix ending in .* (device.*).'),
      h('p', { class: 'help', id: 'event-actor-help' }, 'Actor: user:NAME finds that user\'s actions, through a session or an API token too; a name ending in * is a prefix (token:*).'),
    ),
    h('section', { 'aria-labelledby': 'events-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'events-title' }, 'Events'), csv),
      summary, results, pager),
  ]);
}

function details(d: Record<string, unknown>): string {
  const parts = Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.join('; ');
}

function eventTable(events: Event[], vaName: Map<string, string>): HTMLElement {
  if (!events.length) return status('No event matches these filters.');
  return h('table', { id: 'events' },
    h('caption', { class: 'visually-hidden' }, 'Events matching the filters, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'num' }, 'Event'), h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Type'),
      h('th', { scope: 'col' }, 'Actor'), h('th', { scope: 'col' }, 'Subject'), h('th', { scope: 'col' }, 'Virtual account'),
      h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Details'),
    )),
    h('tbody', {}, events.map((e) =>
      h('tr', { 'data-event': e.id },
        h('th', { scope: 'row', class: 'num' }, String(e.id)),
        h('td', { class: 'at' }, h('time', { datetime: e.at }, when(e.at))),
        h('td', { class: 'type' }, e.type),
        h('td', { class: 'actor' }, e.actor),
        h('td', { class: 'subject' }, e.subject ?? '—'),
        h('td', {}, e.vaId ? (vaName.get(e.vaId) ?? e.vaId) : '—'),
        h('td', {}, e.origin ?? 'collector'),
        h('td', { class: 'details' }, details(e.details)),
      ),
    )),
  );
}
