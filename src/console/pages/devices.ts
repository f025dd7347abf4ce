import { api } from '../api.js';
import { keysetPager } from '../pager.js';
import { h, icon, status } from '../dom.js';
import { when } from '../format.js';
import type { Caller } from '../session.js';
import type { Va, Device } from '../types.js';

interface Label {
  name: string;
  colour: string;
}
interface DeviceList {
  items: Device[];
  nextCursor: string | null;
}

/** A page of the table: small enough to read at 1280×800, the server pages the rest. */
export const DEVICE_PAGE_SIZE = 25;

const SORTS: [string, string][] = [
  ['id', 'Device id'],
  ['serial', 'Serial number'],
  ['pid', 'Product id'],
  ['hostname', 'Host name'],
  ['registered', 'Registered'],
  ['lastSeen', 'Last seen'],
];

/** The search and filters as the list and its CSV both take them (the CSV is every match, in id order). */
export function filterQuery(f: { q: string; vaId: string; status: string; source: string; label?: string }): URLSearchParams {
  const p = new URLSearchParams();
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.vaId) p.set('vaId', f.vaId);
  if (f.status) p.set('status', f.status);
  if (f.source) p.set('source', f.source);
  if (f.label) p.set('label', f.label);
  return p;
}

/**
 * Devices: the search, filters and sort run on the collector, which pages by cursor; the page
 * keeps the cursors it was given so that "Previous" goes back without the server keeping state.
 */
export async function devicesPage(main: HTMLElement, _caller: Caller): Promise<void> {
  const [vas, labels] = await Promise.all([api<{ items: Va[] }>('GET', '/virtual-accounts'), api<{ items: Label[] }>('GET', '/labels')]);
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));

  const select = (id: string, name: string, options: [string, string][]) =>
    h('select', { id, name }, options.map(([value, label]) => h('option', { value }, label)));
  const q = h('input', { id: 'device-q', name: 'q', type: 'search', maxlength: 200, autocomplete: 'off', 'aria-describedby': 'device-q-help' });
  const va = select('device-va', 'vaId', [['', 'All'], ...vas.items.map((v): [string, string] => [v.id, v.name])]);
  const st = select('device-status', 'status', [['', 'All'], ['active', 'Active'], ['stale', 'Stale'], ['deregistered', 'Deregistered']]);
  const source = select('device-source', 'source', [['', 'All'], ['registered', 'Registered'], ['rum', 'RUM import']]);
  const label = select('device-label', 'label', [['', 'All'], ...labels.items.map((l): [string, string] => [l.name, l.name])]);
  const sort = select('device-sort', 'sort', SORTS);
  const order = select('device-order', 'order', [['asc', 'Ascending'], ['desc', 'Descending']]);
  const field = (label: string, control: HTMLElement, cls = 'field') => h('p', { class: cls }, h('label', { for: control.id }, label), control);
  const form = h('form', { class: 'inline-form', id: 'device-search', role: 'search', 'aria-label': 'Search devices', novalidate: true },
    field('Search', q, 'field grow'), field('Virtual account', va), field('Status', st), field('Source', source), field('Label', label), field('Sort by', sort), field('Order', order),
    h('p', { class: 'field' }, h('button', { type: 'submit', class: 'primary' }, h('span', {}, 'Search'))),
  );
  const csv = h('a', { id: 'devices-csv', class: 'button-link', href: '/api/v1/devices.csv', download: '' }, h('span', {}, 'Download CSV'));
  const summary = h('p', { id: 'devices-summary', role: 'status' });
  const results = h('div', { id: 'devices-results' });
  const prev = h('button', { type: 'button', id: 'devices-prev' }, h('span', {}, 'Previous page'));
  const next = h('button', { type: 'button', id: 'devices-next' }, h('span', {}, 'Next page'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Device pages' }, prev, next);

  const filters = () => ({ q: q.value, vaId: va.value, status: st.value, source: source.value, label: label.value });
  const { load, restart } = keysetPager<Device>({
    fetch: (cursor) => {
      const p = filterQuery(filters());
      const qs = p.toString();
      csv.setAttribute('href', `/api/v1/devices.csv${qs ? `?${qs}` : ''}`);
      p.set('sort', sort.value);
      p.set('order', order.value);
      p.set('limit', String(DEVICE_PAGE_SIZE));
      if (cursor) p.set('cursor', cursor);
      return api<DeviceList>('GET', `/devices?${p}`);
    },
    draw: (items) => deviceTable(items, vaName),
    noun: 'devices', more: ', more on the next page', pageSize: DEVICE_PAGE_SIZE, results, summary, prev, next,
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void restart();
  });
  // A changed filter or sort applies at once; typing in the search waits for Enter or the button.
  for (const s of [va, st, source, label, sort, order]) s.addEventListener('change', () => void restart());

  await load();
  main.replaceChildren(
    h('h1', {}, 'Devices'),
    h('p', { class: 'lede', id: 'device-q-help' }, 'Search by the start of a serial number, product id, host name or device id.'),
    h('section', { 'aria-labelledby': 'device-search-title', class: 'panel' }, h('h2', { id: 'device-search-title' }, 'Search and filter'), form),
    h('section', { 'aria-labelledby': 'devices-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'devices-title' }, 'Devices'), csv),
      summary, results, pager),
  );
}

function deviceTable(devices: Device[], vaName: Map<string, string>): HTMLElement {
  if (!devices.length) return status('No device matches this search.');
  const tone = (s: Device['status']) => (s === 'active' ? 'ok' : s === 'stale' ? 'bad' : 'plain');
  return h('table', { id: 'devices' },
    h('caption', { class: 'visually-hidden' }, 'Devices matching the search'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Serial number'), h('th', { scope: 'col' }, 'Product id'), h('th', { scope: 'col' }, 'Host name'),
      h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Source'),
      h('th', { scope: 'col' }, 'Registered'), h('th', { scope: 'col' }, 'Last seen'), h('th', { scope: 'col' }, 'Labels'),
    )),
    h('tbody', {}, devices.map((d) =>
      h('tr', { 'data-device': d.id },
        h('th', { scope: 'row', class: 'serial' }, h('a', { href: `#/devices/${encodeURIComponent(d.id)}` }, d.udi.serial)),
        h('td', {}, d.udi.pid),
        h('td', {}, d.hostname || '—'),
        h('td', {}, vaName.get(d.vaId) ?? d.vaId),
        h('td', { class: 'state' },
          h('span', { class: `badge tone-${tone(d.status)}` }, icon(d.status === 'active' ? 'check' : d.status === 'stale' ? 'clock' : 'block'), h('span', {}, d.status)),
          d.pendingRekey ? h('span', { class: 'short' }, ' re-key pending') : null),
        h('td', {}, d.source === 'rum' ? 'RUM import' : 'registered'),
        h('td', {}, when(d.registeredAt)),
        h('td', {}, when(d.lastSeenAt)),
        h('td', { class: 'labels' }, d.labels.length ? h('ul', { class: 'label-chips' }, d.labels.map(labelChip)) : '—'),
      ),
    )),
  );
}

/** A label as a chip: its name in text, its colour a swatch beside it (the colour alone says nothing). */
function labelChip(l: Label): HTMLElement {
  const swatch = h('span', { class: 'label-swatch', 'aria-hidden': 'true' });
  // Set through the style object, which the console's content policy allows (a style attribute it does not).
  swatch.style.setProperty('--label-colour', l.colour);
  return h('li', { class: 'label-chip' }, swatch, h('span', {}, l.name));
}
