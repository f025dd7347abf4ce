import { api, ApiError } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { may, vasWith, type Caller } from '../session.js';
import { eventTable, reportTable, time, usageTable, type DeviceEvent, type StoredReport, type UsageNow } from './device-tables.js';

interface Va {
  id: string;
  name: string;
}
interface Device {
  id: string;
  vaId: string;
  udi: { pid: string; serial: string };
  udis: string[];
  hostname: string;
  softwareVersion: string;
  status: 'active' | 'stale' | 'deregistered';
  source: 'registered' | 'rum';
  pendingRekey: { since: string; reason: 'new_key' | 'claim_keyless' | 'revive' } | null;
  registeredAt: string;
  lastSeenAt: string | null;
  lastSeq: number | null;
}
interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Rows of a device's reports and events per page: a screenful at 1280×800; the collector pages the rest. */
export const DEVICE_ROWS = 10;

const PENDING_WORDS: Record<NonNullable<Device['pendingRekey']>['reason'], string> = {
  new_key: 'A device with this UDI asks to change its key.',
  claim_keyless: 'This device, known from RUM files, asks to register with a key.',
  revive: 'This deregistered device asks to register again.',
};

/**
 * One device: who it is, what it uses now, its reports and where each stands with its
 * destinations, and its audit events. The changes (move, deregister, a re-key's decision) are
 * offered only to a caller who may operate on the device's VA; after each, the page is read
 * again before its notice is shown, so the notice never speaks of a state the page does not show.
 */
export async function devicePage(main: HTMLElement, caller: Caller, id: string): Promise<void> {
  const path = `/devices/${encodeURIComponent(id)}`;
  let device: Device;
  try {
    device = await api<Device>('GET', path);
  } catch (e) {
    return refused(main, id, e);
  }
  const [vas, compliance] = await Promise.all([
    api<{ items: Va[] }>('GET', '/virtual-accounts'),
    api<{ items: { tags: { tag: string; displayName: string }[] }[] }>('GET', '/compliance'),
  ]);
  const vaNames = new Map(vas.items.map((v) => [v.id, v.name]));
  const vaName = (v: string) => vaNames.get(v) ?? v;
  const names = new Map(compliance.items.flatMap((c) => c.tags.map((t) => [t.tag, t.displayName] as const)));
  const license = (tag: string) => names.get(tag) ?? tag;

  const notice = h('div', { id: 'device-notice', tabindex: '-1' });
  const body = h('div', { id: 'device-body' });
  const heading = h('h1', {});
  const reports = paged<StoredReport>('device-reports', 'Report pages', (cursor) =>
    api('GET', `${path}/reports?limit=${DEVICE_ROWS}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), (items) => reportTable(items, license));
  const events = paged<DeviceEvent>('device-events', 'Event pages', (cursor) =>
    api('GET', `/events?subject=${encodeURIComponent(id)}&limit=${DEVICE_ROWS}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), (items) => eventTable(items, vaName));
  let answers = 0;

  const draw = async () => {
    const [d, usage] = await Promise.all([api<Device>('GET', path), api<UsageNow>('GET', `${path}/usage`), reports.restart(), events.restart()]);
    device = d;
    heading.textContent = `Device ${d.udi.serial}`;
    document.title = `Device ${d.udi.serial} · Outpost`;
    body.replaceChildren();
    append(body, [
      d.pendingRekey ? pendingPanel(d, caller, act) : null,
      identity(d, vaName),
      may(caller, 'operate', d.vaId) ? actionsPanel(d, caller, vas.items, act) : null,
      h('section', { 'aria-labelledby': 'usage-title' }, h('h2', { id: 'usage-title' }, 'Licenses in use now'), usageTable(usage, license, d.status)),
      h('section', { 'aria-labelledby': 'reports-title' }, h('h2', { id: 'reports-title' }, 'Reports, newest first'), reports.el),
      h('section', { 'aria-labelledby': 'events-title' }, h('h2', { id: 'events-title' }, 'History and key events'), events.el),
    ]);
    body.dataset.answer = String(++answers);
  };

  /** Runs one change, reads the page again, and only then says how it went. */
  async function act(done: string, failed: string, change: string, payload?: unknown): Promise<void> {
    for (const b of body.querySelectorAll<HTMLButtonElement>('.device-action')) b.disabled = true;
    let said: HTMLElement;
    try {
      await api('POST', `${path}/${change}`, payload);
      said = status(done);
    } catch (e) {
      said = status(`${failed}: ${(e as Error).message}`, 'error');
    }
    try {
      await draw();
    } catch (e) {
      said = status(`${said.textContent ?? ''} The page could not be read again: ${(e as Error).message}`, 'error');
    }
    notice.replaceChildren(said);
    notice.focus();
  }

  await draw();
  main.replaceChildren(
    heading,
    h('p', { class: 'lede' }, h('a', { href: '#/devices' }, 'All devices'), ` · ${device.udi.pid}${device.hostname ? ` · ${device.hostname}` : ''}`),
    notice,
    body,
  );
}

type Act = (done: string, failed: string, change: string, payload?: unknown) => Promise<void>;

/** The device could not be read: said in words, and a refusal told apart from a device that does not exist. */
function refused(main: HTMLElement, id: string, e: unknown): void {
  const err = e as Error;
  const words =
    e instanceof ApiError && e.status === 403
      ? `You may not see this device: it is in a virtual account you hold no role on. (${err.message})`
      : e instanceof ApiError && e.status === 404
        ? `No device has the id ${id}.`
        : `This device could not be loaded: ${err.message}`;
  main.replaceChildren(h('h1', {}, 'Device'), status(words, 'error'), h('p', {}, h('a', { href: '#/devices' }, 'All devices')));
}

function identity(d: Device, vaName: (id: string) => string): HTMLElement {
  const tone = d.status === 'active' ? 'ok' : d.status === 'stale' ? 'bad' : 'plain';
  const row = (field: string, label: string, value: Node | string) => [h('dt', {}, label), h('dd', { 'data-field': field }, value)];
  return h('section', { 'aria-labelledby': 'identity-title', class: 'panel' },
    h('h2', { id: 'identity-title' }, 'Identity'),
    h('dl', { class: 'pairs', id: 'device-identity' },
      row('pid', 'Product id', d.udi.pid),
      row('serial', 'Serial number', d.udi.serial),
      d.udis.length > 1 ? row('udis', 'All UDIs', d.udis.join(', ')) : null,
      row('hostname', 'Host name', d.hostname || '—'),
      row('software', 'Software', d.softwareVersion || '—'),
      row('va', 'Virtual account', vaName(d.vaId)),
      row('status', 'Status', h('span', { class: `badge tone-${tone}` }, icon(d.status === 'active' ? 'check' : d.status === 'stale' ? 'clock' : 'block'), h('span', {}, d.status))),
      row('source', 'Source', d.source === 'rum' ? 'RUM import' : 'registered'),
      row('registered', 'Registered', time(d.registeredAt)),
      row('last-seen', 'Last seen', time(d.lastSeenAt)),
      row('id', 'Device id', h('code', {}, d.id)),
    ),
  );
}

function pendingPanel(d: Device, caller: Caller, act: Act): HTMLElement {
  const p = d.pendingRekey!;
  const mine = may(caller, 'operate', d.vaId);
  return h('section', { 'aria-labelledby': 'rekey-title', class: 'panel rekey-panel', id: 'device-rekey' },
    h('h2', { id: 'rekey-title' }, icon('key'), h('span', {}, 'Re-key waiting for a decision')),
    h('p', {}, PENDING_WORDS[p.reason] ?? 'A new key waits for approval.', ' Asked ', time(p.since), '. Approve only if you know the device was replaced or reset; the old key stops working.'),
    mine
      ? h('p', { class: 'button-row' },
          h('button', { type: 'button', class: 'primary device-action', onclick: () => void act('Re-key approved: the device now signs with its new key.', 'The re-key was not approved', 'rekey/approve') },
            icon('check'), h('span', {}, 'Approve re-key')),
          h('button', { type: 'button', class: 'danger device-action', onclick: () => void act('Re-key refused: the device keeps its old key.', 'The re-key was not refused', 'rekey/refuse') },
            icon('block'), h('span', {}, 'Refuse re-key')),
        )
      : null,
  );
}

function actionsPanel(d: Device, caller: Caller, vas: Va[], act: Act): HTMLElement {
  const operable = vasWith(caller, 'operate');
  const targets = vas.filter((v) => v.id !== d.vaId && (operable === 'all' || operable.includes(v.id)));
  let move: HTMLElement | null = null;
  if (targets.length) {
    const to = h('select', { id: 'device-move-va', name: 'vaId' }, targets.map((v) => h('option', { value: v.id }, v.name)));
    const form = h('form', { class: 'inline-form', id: 'device-move', 'aria-label': 'Move the device', novalidate: true },
      h('p', { class: 'field' }, h('label', { for: 'device-move-va' }, 'Move to virtual account'), to),
      h('p', { class: 'field' }, h('button', { type: 'submit', class: 'device-action' }, icon('device'), h('span', {}, 'Move device'))),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = to.selectedOptions[0]?.textContent ?? to.value;
      void act(`Device ${d.udi.serial} moved to ${name}.`, 'The device was not moved', 'move', { vaId: to.value });
    });
    move = form;
  }
  const deregister = d.status === 'deregistered'
    ? null
    : h('p', {},
        h('button', {
          type: 'button', class: 'danger device-action', id: 'device-deregister',
          onclick: () => {
            if (!confirm(`Deregister ${d.udi.pid} ${d.udi.serial}? Its licenses are released at once, and it must register again (approved by an operator) to report.`)) return;
            void act(`Device ${d.udi.serial} deregistered; its licenses are released.`, 'The device was not deregistered', 'deregister');
          },
        }, icon('block'), h('span', {}, 'Deregister device')));
  return h('section', { 'aria-labelledby': 'actions-title', class: 'panel', id: 'device-actions' },
    h('h2', { id: 'actions-title' }, 'Actions'),
    move ?? h('p', {}, 'There is no other virtual account you may move it to.'),
    deregister,
  );
}

/** A table the collector pages by cursor; the page keeps the cursors it was given so that "Newer" goes back. */
function paged<T>(id: string, label: string, fetchPage: (cursor: string | null) => Promise<Page<T>>, render: (items: T[]) => HTMLElement) {
  const el = h('div', { id: `${id}-list` });
  let cursors: (string | null)[] = [null];
  let at = 0;
  let answers = 0;
  const load = async () => {
    const got = await fetchPage(cursors[at] ?? null);
    cursors = cursors.slice(0, at + 1);
    if (got.nextCursor) cursors.push(got.nextCursor);
    // Buttons only when there is somewhere to go: a short history offers no control at all.
    const pager = at > 0 || got.nextCursor
      ? h('nav', { class: 'pager', 'aria-label': label },
          h('button', { type: 'button', 'data-step': -1, disabled: at === 0, onclick: () => void go(-1) }, h('span', {}, 'Newer')),
          h('button', { type: 'button', 'data-step': 1, disabled: !got.nextCursor, onclick: () => void go(1) }, h('span', {}, 'Older')))
      : null;
    el.replaceChildren(render(got.items), ...(pager ? [pager] : []));
    el.dataset.answer = String(++answers);
  };
  const go = async (step: number) => {
    at = Math.max(0, Math.min(cursors.length - 1, at + step));
    try {
      await load();
      // The pager is drawn anew: keyboard focus stays on it rather than falling to the page's top.
      (el.querySelector<HTMLButtonElement>(`button[data-step="${step}"]:enabled`) ?? el.querySelector<HTMLButtonElement>('.pager button:enabled'))?.focus();
    } catch (e) {
      el.replaceChildren(status(`This page could not be read: ${(e as Error).message}`, 'error'));
    }
  };
  return {
    el,
    restart: () => {
      cursors = [null];
      at = 0;
      return load();
    },
  };
}
