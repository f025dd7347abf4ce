import { actThenSay } from '../act.js';
import { api } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { secretPanel } from '../secret-panel.js';
import { checkbox, severityTicks, vaNames, vaTicks, type Severity, type Va } from './notifications-fields.js';

interface ChannelStatus {
  pending: number;
  failed: number;
  lastSuccessAt: string | null;
  lastError: { at: string; message: string } | null;
}
interface Filter {
  severities: Severity[];
  vaIds: string[] | null;
  kinds: string[] | null;
}
interface Sink {
  id: string;
  name: string;
  kind: 'syslog' | 'webhook';
  enabled: boolean;
  syslog?: { host: string; port: number; transport: 'udp' | 'tcp'; facility: number };
  webhook?: { url: string; hmacKeyFile: string };
  filter: Filter;
  resolutions: boolean;
}
type Added = Sink & { secret?: string };

const CHANNELS = ['email', 'syslog', 'webhook'] as const;
const VA_HELP = 'None ticked: every virtual account, and the alerts about none (the clock, the sync).';

interface SinkActions {
  add(body: object): Promise<boolean>;
  change(s: Sink, body: object, what: string): Promise<boolean>;
  remove(s: Sink): Promise<boolean>;
}

/** The admin's half of the page: each channel's status, the sinks, and the forms that add and change them. */
export async function sinksSection(vas: Va[]): Promise<HTMLElement> {
  const notice = h('div', { id: 'sinks-notice', tabindex: '-1' });
  const channels = h('div', { id: 'notify-status', 'data-answer': '0' });
  const list = h('div', { id: 'sinks-list', 'data-answer': '0' });
  const editor = h('div', { id: 'sink-editor' });
  let answers = 0;
  let sinks: Sink[] = [];

  const reload = async () => {
    const [st, s] = await Promise.all([
      api<Record<string, ChannelStatus>>('GET', '/notifications/status'),
      api<{ items: Sink[] }>('GET', '/notifications/sinks'),
    ]);
    sinks = s.items;
    channels.replaceChildren(statusTable(st));
    list.replaceChildren(sinkTable(sinks, vas, { edit, ...actions }));
    const open = editor.dataset.sink;
    const still = sinks.find((x) => x.id === open);
    if (open && !still) close();
    answers++;
    channels.dataset.answer = String(answers);
    list.dataset.answer = String(answers);
  };
  const act = (change: () => Promise<HTMLElement>, failed: string) => actThenSay({ where: notice, change, failed, reload, unread: 'The sinks could not be read again' });
  const shown = (s: Added, said: string) =>
    s.secret
      ? h('div', {}, status(said), secretPanel({
        prefix: 'sink', title: `Webhook key of "${s.name}"`, secret: s.secret, label: 'Webhook signing key',
        help: 'it is shown only this once. The receiver checks each request\'s X-Outpost-Signature with it (HMAC-SHA256).',
      }))
      : status(said);
  const actions: SinkActions = {
    add: (body) => act(async () => {
      const s = await api<Added>('POST', '/notifications/sinks', body);
      return shown(s, `Sink ${s.name} added.`);
    }, 'The sink was not added'),
    change: (s, body, what) => act(async () => {
      const c = await api<Added>('PATCH', `/notifications/sinks/${encodeURIComponent(s.id)}`, body);
      return shown(c, `Sink ${c.name}: ${what}.`);
    }, `Sink ${s.name} was not changed`),
    remove: (s) => {
      if (!confirm(`Remove the sink ${s.name}? What it still has to deliver is marked failed.`)) return Promise.resolve(false);
      return act(async () => (await api('DELETE', `/notifications/sinks/${encodeURIComponent(s.id)}`), status(`Sink ${s.name} removed.`)), `Sink ${s.name} was not removed`);
    },
  };
  const close = () => (editor.replaceChildren(), delete editor.dataset.sink);
  const edit = (s: Sink) => {
    editor.dataset.sink = s.id;
    editor.replaceChildren(h('section', { class: 'panel', 'aria-labelledby': 'sink-edit-title' },
      h('h3', { id: 'sink-edit-title', tabindex: '-1' }, `Change sink ${s.name}`),
      sinkForm({ vas, sink: s, submit: async (body) => {
        // Saved: the table shows the change, and the form, now out of date, goes.
        const done = await actions.change(s, body, 'changes saved');
        if (done) close();
        return done;
      }, cancel: close })));
    editor.querySelector<HTMLElement>('h3')?.focus();
  };

  await reload();
  const refresh = h('button', { type: 'button', id: 'notify-refresh', onclick: () => void reload() }, icon('clock'), h('span', {}, 'Read the status again'));
  return h('div', { id: 'sinks-admin' },
    h('section', { 'aria-labelledby': 'channels-title', class: 'panel' },
      h('h2', { id: 'channels-title' }, 'Channels'),
      h('p', { class: 'help' }, 'Notifications waiting to be delivered, those that failed for good, and each channel\'s last success and last error.'),
      channels, h('p', { class: 'buttons' }, refresh)),
    h('section', { 'aria-labelledby': 'sinks-title', class: 'panel' },
      h('h2', { id: 'sinks-title' }, 'Sinks'),
      notice, list, editor),
    h('section', { 'aria-labelledby': 'sink-add-title', class: 'panel' },
      h('h2', { id: 'sink-add-title' }, 'Add a sink'),
      sinkForm({ vas, sink: null, submit: actions.add })),
  );
}

function statusTable(st: Record<string, ChannelStatus>): HTMLElement {
  return h('table', { id: 'channels' },
    h('caption', { class: 'visually-hidden' }, 'Notifications by channel'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Pending'), h('th', { scope: 'col' }, 'Failed'),
      h('th', { scope: 'col' }, 'Last success'), h('th', { scope: 'col' }, 'Last error'))),
    h('tbody', {}, CHANNELS.map((c) => {
      const s = st[c] ?? { pending: 0, failed: 0, lastSuccessAt: null, lastError: null };
      return h('tr', { 'data-channel': c, class: s.failed ? 'tone-bad' : null },
        h('th', { scope: 'row' }, c),
        h('td', { class: 'pending num' }, count(s.pending)),
        h('td', { class: 'failed num' }, count(s.failed)),
        h('td', { class: 'last-success' }, when(s.lastSuccessAt)),
        h('td', { class: 'last-error' }, s.lastError ? `${when(s.lastError.at)}: ${s.lastError.message}` : 'none'));
    })),
  );
}

const target = (s: Sink) => (s.syslog ? `${s.syslog.transport}://${s.syslog.host}:${s.syslog.port}` : s.webhook!.url);

function sinkTable(sinks: Sink[], vas: Va[], a: SinkActions & { edit(s: Sink): void }): HTMLElement {
  if (!sinks.length) return status('No sink yet: alerts go by e-mail to subscribers only.');
  return h('table', { id: 'sinks' },
    h('caption', { class: 'visually-hidden' }, 'Syslog and webhook sinks, by name'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Target'), h('th', { scope: 'col' }, 'Severities'),
      h('th', { scope: 'col' }, 'Virtual accounts'), h('th', { scope: 'col' }, 'Alert kinds'), h('th', { scope: 'col' }, 'Resolutions'), h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    h('tbody', {}, sinks.map((s) =>
      h('tr', { 'data-sink': s.id, 'data-name': s.name },
        h('th', { scope: 'row' }, s.name),
        h('td', {}, s.kind),
        h('td', { class: 'target' }, target(s)),
        h('td', { class: 'severities' }, s.filter.severities.join(', ')),
        h('td', { class: 'vas' }, vaNames(vas, s.filter.vaIds, 'every VA')),
        h('td', { class: 'kinds' }, s.filter.kinds?.join(', ') ?? 'every kind'),
        h('td', {}, s.resolutions ? 'yes' : 'no'),
        h('td', { class: 'state' }, h('span', { class: `badge tone-${s.enabled ? 'ok' : 'plain'}` }, icon(s.enabled ? 'check' : 'block'), h('span', {}, s.enabled ? 'enabled' : 'disabled'))),
        h('td', { class: 'actions' }, h('span', { class: 'button-row' },
          h('button', { type: 'button', 'aria-label': `Change ${s.name}`, onclick: () => a.edit(s) }, h('span', {}, 'Change')),
          h('button', { type: 'button', 'aria-label': `${s.enabled ? 'Disable' : 'Enable'} ${s.name}`, onclick: () => void a.change(s, { enabled: !s.enabled }, s.enabled ? 'disabled: it is given no new alert' : 'enabled') },
            h('span', {}, s.enabled ? 'Disable' : 'Enable')),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${s.name}`, onclick: () => void a.remove(s) }, h('span', {}, 'Remove')))),
      ),
    )),
  );
}

/**
 * The form that adds a sink (sink: null) or changes one: its filter and target. A webhook added
 * without a key file gets a key made by the collector, shown once; a change may ask for a new one.
 */
function sinkForm(o: { vas: Va[]; sink: Sink | null; submit: (body: object) => Promise<boolean>; cancel?: () => void }): HTMLElement {
  const s = o.sink;
  const p = s ? `sink-edit` : 'sink-add';
  const kind = h('select', { id: `${p}-kind`, name: 'kind', disabled: !!s },
    h('option', { value: 'webhook', selected: s?.kind !== 'syslog' }, 'webhook (signed JSON)'), h('option', { value: 'syslog', selected: s?.kind === 'syslog' }, 'syslog (RFC 5424)'));
  const name = h('input', { id: `${p}-name`, name: 'name', required: true, maxlength: 100, autocomplete: 'off', value: s?.name ?? '' });
  const url = h('input', { id: `${p}-url`, name: 'url', type: 'url', maxlength: 2000, autocomplete: 'off', spellcheck: 'false', value: s?.webhook?.url ?? '' });
  const keyFile = h('input', { id: `${p}-key-file`, name: 'hmacKeyFile', maxlength: 4096, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${p}-key-help` });
  const newKey = checkbox(`${p}-new-key`, 'Make a new key (shown once)', false);
  const host = h('input', { id: `${p}-host`, name: 'host', maxlength: 255, autocomplete: 'off', spellcheck: 'false', value: s?.syslog?.host ?? '' });
  const port = h('input', { id: `${p}-port`, name: 'port', type: 'number', min: 1, max: 65535, value: s?.syslog?.port ?? 514 });
  const transport = h('select', { id: `${p}-transport`, name: 'transport' },
    h('option', { value: 'udp', selected: s?.syslog?.transport !== 'tcp' }, 'UDP'), h('option', { value: 'tcp', selected: s?.syslog?.transport === 'tcp' }, 'TCP'));
  const sev = severityTicks(`${p}-severities`, s?.filter.severities ?? ['info', 'warning', 'critical']);
  const va = vaTicks(`${p}-vas`, o.vas, s?.filter.vaIds ?? null, VA_HELP);
  const kinds = h('input', { id: `${p}-kinds`, name: 'kinds', maxlength: 2000, autocomplete: 'off', spellcheck: 'false', value: s?.filter.kinds?.join(', ') ?? '', 'aria-describedby': `${p}-kinds-help` });
  const resolutions = checkbox(`${p}-resolutions`, 'Also when an alert resolves', s?.resolutions ?? false);

  const webhookFields = h('div', { class: 'inline-form' },
    h('p', { class: 'field grow' }, h('label', { for: url.id }, 'Webhook URL'), url),
    s ? newKey.field : h('p', { class: 'field grow' }, h('label', { for: keyFile.id }, 'Key file on the collector\'s host (optional)'), keyFile,
      h('span', { class: 'help', id: `${p}-key-help` }, 'Left empty, the collector makes a key and shows it once.')));
  const syslogFields = h('div', { class: 'inline-form' },
    h('p', { class: 'field grow' }, h('label', { for: host.id }, 'Syslog host'), host),
    h('p', { class: 'field narrow' }, h('label', { for: port.id }, 'Port'), port),
    h('p', { class: 'field' }, h('label', { for: transport.id }, 'Transport'), transport));
  const follow = () => {
    webhookFields.hidden = kind.value !== 'webhook';
    syslogFields.hidden = kind.value !== 'syslog';
  };
  kind.addEventListener('change', follow);
  follow();

  const submit = h('button', { type: 'submit', class: 'primary' }, icon(s ? 'check' : 'plus'), h('span', {}, s ? 'Save changes' : 'Add sink'));
  const form = h('form', { id: `${p}-form`, novalidate: true },
    h('div', { class: 'inline-form' },
      h('p', { class: 'field' }, h('label', { for: kind.id }, 'Sink kind'), kind),
      h('p', { class: 'field grow' }, h('label', { for: name.id }, 'Name'), name)),
    webhookFields, syslogFields,
    h('div', { class: 'filter-row' }, sev.fieldset, va.fieldset),
    h('p', { class: 'field' }, h('label', { for: kinds.id }, 'Alert kinds'), kinds,
      h('span', { class: 'help', id: `${p}-kinds-help` }, 'Comma-separated, such as shortage, device_silent; empty: every kind.')),
    resolutions.field,
    h('p', { class: 'buttons' }, submit,
      o.cancel ? h('button', { type: 'button', id: `${p}-cancel`, onclick: o.cancel }, h('span', {}, 'Cancel')) : null),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const vaIds = va.checked();
    const kindList = kinds.value.split(',').map((k) => k.trim()).filter(Boolean);
    const filter = { severities: sev.checked(), vaIds: vaIds.length ? vaIds : null, kinds: kindList.length ? kindList : null };
    const target = kind.value === 'syslog'
      ? { syslog: { host: host.value.trim(), port: Number(port.value), transport: transport.value } }
      : { webhook: { url: url.value.trim(), ...(keyFile.value.trim() ? { hmacKeyFile: keyFile.value.trim() } : {}), ...(s && newKey.input.checked ? { newSecret: true } : {}) } };
    const body = { ...(s ? {} : { kind: kind.value }), name: name.value.trim(), filter, resolutions: resolutions.input.checked, ...target };
    submit.disabled = true;
    void o.submit(body).then((done) => {
      submit.disabled = false;
      // An added sink leaves an empty form for the next; a refused one keeps what was typed.
      if (done && !s) {
        form.reset();
        follow();
      }
    });
  });
  return form;
}
