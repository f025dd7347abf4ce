import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { may, type Caller } from '../session.js';
import { CallError, followed, uploadBytes, type Progress } from './exchange-calls.js';

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
interface Preview {
  period: string;
  reports: number;
  devices: number;
  virtualAccounts: number;
  proposals: number;
  usageSummary: number;
  usage: { vaId: string; vaName: string; tag: string; inUse: number; devices: number }[];
  privacy: { hostnames: 'keyed-hash' | 'clear' };
}
interface Exported {
  bundleId: string;
  sequence: number;
  period: string;
  reports: number;
  devices: number;
  bytes: number;
  hash: string;
}
interface Imported {
  status: 'applied' | 'already_imported';
  sequence: number;
  acks: { accepted: number; rejected: number; stale: number };
  entitlements: { applied: number; skippedOlder: number };
  virtualAccounts: { confirmed: number; refused: number };
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

  const statusBox = h('div', { id: 'exchange-status' }, statusList(st));
  const history = h('div', { id: 'exchange-history' }, historyTable(bundles.items, refused.items, operate));
  let answers = 0;
  const reload = async () => {
    const [s, b, r] = await Promise.all([api<ExchangeStatus>('GET', '/exchange/status'), api<{ items: Bundle[] }>('GET', '/exchange/bundles'), refusals()]);
    statusBox.replaceChildren(statusList(s));
    history.replaceChildren(historyTable(b.items, r.items, operate));
    history.dataset.answer = String(++answers);
  };

  main.replaceChildren(h('h1', {}, 'Exchange'));
  append(main, [
    h('p', { class: 'lede' }, cisco ? "Usage goes to Cisco's cloud; ACKs come back to the devices." : 'Usage goes to the upstream as signed bundles; its response bundles bring ACKs and entitlements back.'),
    h('section', { 'aria-labelledby': 'xstatus-title', class: 'panel' }, h('h2', { id: 'xstatus-title' }, 'Status'), statusBox),
    operate ? exportSection(caller, reload) : null,
    operate ? uploadSection(caller, reload) : null,
    h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'History'), lastSync(st), history),
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
function exportSection(caller: Caller, reload: () => Promise<void>): HTMLElement {
  const period = h('input', { id: 'export-period', name: 'period', type: 'month', 'aria-describedby': 'export-period-help' });
  const previewButton = h('button', { type: 'submit', id: 'export-preview' }, icon('info'), h('span', {}, 'Preview'));
  const writeButton = h('button', { type: 'button', class: 'primary', id: 'export-write', disabled: true }, icon('plus'), h('span', {}, 'Write bundle'));
  const shown = h('div', { id: 'export-preview-result', 'aria-live': 'polite' });
  const outcome = h('div', { id: 'export-result', 'aria-live': 'polite' });
  const section = h('section', { 'aria-labelledby': 'export-title', class: 'panel', id: 'export' });
  let previewed: Preview | null = null;
  let answers = 0;
  const answered = (el: HTMLElement) => (el.dataset.answer = String(++answers));

  const form = h('form', { class: 'inline-form', id: 'export-form', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: 'export-period' }, 'Period'), period),
    h('p', { class: 'field' }, previewButton),
    h('p', { class: 'field' }, writeButton),
  );
  // A changed period is a new question: the preview shown no longer answers it.
  period.addEventListener('input', () => {
    previewed = null;
    writeButton.disabled = true;
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = period.value.trim();
    if (p && !/^\d{4}-(0[1-9]|1[0-2])$/.test(p)) return void shown.replaceChildren(status('Period: a month as YYYY-MM, e.g. 2026-11, or empty for the current month.', 'error'));
    previewButton.disabled = true;
    void api<Preview & { dryRun: true }>('POST', '/exchange/export', { dryRun: true, ...(p ? { period: p } : {}) })
      .then((r) => {
        previewed = r;
        shown.replaceChildren(previewView(r));
        writeButton.disabled = false;
      })
      .catch((err: unknown) => shown.replaceChildren(status(`No preview: ${(err as Error).message}`, 'error')))
      .finally(() => {
        previewButton.disabled = false;
        answered(shown);
      });
  });
  writeButton.addEventListener('click', () => {
    if (!previewed) return;
    const bar = h('progress', { id: 'export-progress', 'aria-label': 'Export progress' });
    const said = h('span', { class: 'progress-text' }, 'Starting…');
    outcome.replaceChildren(h('p', { class: 'progress-row', role: 'status' }, bar, said));
    section.setAttribute('aria-busy', 'true');
    writeButton.disabled = previewButton.disabled = true;
    const onProgress = (p: Progress) => {
      if (p.total === null) bar.removeAttribute('value');
      else {
        bar.max = Math.max(p.total, 1);
        bar.value = p.done;
      }
      said.textContent = p.phase === 'sign' ? 'Signing the bundle…' : p.total === null ? `${count(p.done)} ${p.unit ?? 'reports'} written` : `${count(p.done)} of ${count(p.total)} reports written`;
    };
    void followed<Exported>('/exchange/export', { period: previewed.period }, caller.csrfToken, onProgress)
      .then(async (r) => {
        // The preview answered for the state before this bundle: another bundle needs a new look.
        previewed = null;
        await reload();
        outcome.replaceChildren(writtenView(r));
      })
      .catch((err: unknown) => outcome.replaceChildren(status(`No bundle was written: ${(err as Error).message}`, 'error')))
      .finally(() => {
        section.removeAttribute('aria-busy');
        previewButton.disabled = false;
        writeButton.disabled = previewed === null;
        answered(outcome);
      });
  });

  append(section, [
    h('h2', { id: 'export-title' }, 'Export usage'),
    h('p', { id: 'export-period-help' }, 'Preview shows exactly what the bundle would carry; nothing is written until you write it. Leave the period empty for the current month.'),
    form,
    shown,
    outcome,
  ]);
  return section;
}

function previewView(r: Preview): HTMLElement {
  const figures: [string, string, string][] = [
    ['Period', r.period, 'period'],
    ['Reports not yet acknowledged', count(r.reports), 'reports'],
    ['Devices', count(r.devices), 'devices'],
    ['Virtual accounts', `${count(r.virtualAccounts)}${r.proposals ? ` (${count(r.proposals)} proposed as new)` : ''}`, 'vas'],
    ['Hostnames', r.privacy.hostnames === 'keyed-hash' ? 'hashed with a key that stays on this site' : 'sent as they are (clear text)', 'hostnames'],
  ];
  return h('div', { class: 'export-preview' },
    h('h3', {}, 'What would leave'),
    h('dl', { class: 'pairs', id: 'preview-figures' }, figures.flatMap(([k, v, key]) => [h('dt', {}, k), h('dd', { 'data-figure': key }, v)])),
    r.usage.length
      ? h('table', { id: 'preview-usage' },
          h('caption', {}, 'Usage per virtual account and license, as the bundle carries it'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'License tag'), h('th', { scope: 'col', class: 'num' }, 'In use'), h('th', { scope: 'col', class: 'num' }, 'Devices'))),
          h('tbody', {}, r.usage.map((u) =>
            h('tr', { 'data-va': u.vaId, 'data-tag': u.tag },
              h('td', {}, u.vaName), h('th', { scope: 'row', class: 'tag' }, u.tag),
              h('td', { class: 'num in-use' }, count(u.inUse)), h('td', { class: 'num devices' }, count(u.devices)),
            ),
          )),
        )
      : status('No license is in use: the bundle carries no usage.'),
  );
}

function writtenView(r: Exported): HTMLElement {
  return h('div', { class: 'notice notice-info export-written', role: 'status' },
    icon('check'),
    h('span', {}, `Usage bundle ${r.sequence} for ${r.period} written: ${count(r.reports)} reports, ${count(r.bytes)} bytes. `),
    h('a', { href: downloadPath(r.bundleId), download: '', id: 'export-download', class: 'button-link' }, h('span', {}, `Download bundle ${r.sequence}`)),
    h('span', { class: 'hash' }, ` Manifest SHA-256 ${r.hash}`),
  );
}

const downloadPath = (id: string) => `/api/v1/exchange/bundles/${encodeURIComponent(id)}/download`;

/** Upload: a response bundle's bytes, sent as they are; the outcome in words. */
function uploadSection(caller: Caller, reload: () => Promise<void>): HTMLElement {
  const file = h('input', { id: 'upload-file', name: 'bundle', type: 'file', accept: '.opb,application/octet-stream', required: true });
  const send = h('button', { type: 'submit', class: 'primary', id: 'upload-send' }, icon('plus'), h('span', {}, 'Upload and apply'));
  const outcome = h('div', { id: 'upload-result', 'aria-live': 'polite' });
  const section = h('section', { 'aria-labelledby': 'upload-title', class: 'panel', id: 'upload' });
  let answers = 0;
  const form = h('form', { class: 'inline-form', id: 'upload-form', novalidate: true },
    h('p', { class: 'field grow' }, h('label', { for: 'upload-file' }, 'Response bundle (.opb)'), file),
    h('p', { class: 'field' }, send),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return void outcome.replaceChildren(status('Choose the response bundle file the upstream gave you.', 'error'));
    send.disabled = true;
    section.setAttribute('aria-busy', 'true');
    outcome.replaceChildren(h('p', { class: 'loading', role: 'status' }, `Verifying ${chosen.name}…`));
    void uploadBytes<Imported>('/exchange/upload', chosen, caller.csrfToken)
      .then(async (r) => {
        await reload();
        outcome.replaceChildren(appliedView(chosen.name, r));
      })
      .catch(async (err: unknown) => {
        const code = err instanceof CallError ? err.code : 'failed';
        await reload().catch(() => undefined);
        const kept = err instanceof CallError && typeof err.details.keptAs === 'string' ? ` It is kept as ${err.details.keptAs} for a look, and the refusal is on the audit trail.` : '';
        outcome.replaceChildren(status(`${chosen.name} was refused: ${(err as Error).message} (${code}). Nothing was changed.${kept}`, 'error'));
      })
      .finally(() => {
        send.disabled = false;
        section.removeAttribute('aria-busy');
        form.reset();
        outcome.dataset.answer = String(++answers);
      });
  });
  append(section, [
    h('h2', { id: 'upload-title' }, 'Upload a response bundle'),
    h('p', {}, "The upstream's answer to a usage bundle: it is verified (signature, sequence, every payload's hash) before anything in it is applied. A bundle that fails a check changes nothing."),
    form,
    outcome,
  ]);
  return section;
}

function appliedView(name: string, r: Imported): HTMLElement {
  if (r.status === 'already_imported') return status(`${name} was applied before (response ${r.sequence}): nothing new to apply.`);
  const parts = [
    `${count(r.acks.accepted)} reports acknowledged`,
    r.acks.rejected ? `${count(r.acks.rejected)} rejected` : null,
    `entitlements of ${plural(r.entitlements.applied, 'virtual account')} updated`,
    r.virtualAccounts.confirmed ? `${plural(r.virtualAccounts.confirmed, 'virtual account')} confirmed` : null,
    r.virtualAccounts.refused ? `${plural(r.virtualAccounts.refused, 'proposed virtual account')} refused` : null,
  ].filter(Boolean);
  return status(`${name} applied (response ${r.sequence}): ${parts.join(', ')}.`);
}

const plural = (n: number, what: string) => `${count(n)} ${what}${n === 1 ? '' : 's'}`;

function lastSync(x: ExchangeStatus): HTMLElement | null {
  if (x.mode !== 'connected' || !x.lastRun) return null;
  const r = x.lastRun;
  return h('p', { id: 'last-sync' }, `Last sync ${when(r.finishedAt)}: ${r.status}, ${count(r.parts)} parts, ${count(r.reports.sent)} reports sent, ${count(r.reports.accepted)} accepted${r.reports.rejected ? `, ${count(r.reports.rejected)} rejected` : ''}.`);
}

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
