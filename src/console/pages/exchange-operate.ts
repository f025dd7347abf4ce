import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { count } from '../format.js';
import type { Caller } from '../session.js';
import { CallError, followed, uploadBytes, type Progress } from './exchange-calls.js';

/** The Exchange page's controls for those who operate: the export (preview, write, download) and a response's upload. */

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

export function exportSection(caller: Caller, reload: () => Promise<void>): HTMLElement {
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

export const downloadPath = (id: string) => `/api/v1/exchange/bundles/${encodeURIComponent(id)}/download`;

/** Upload: a response bundle's bytes, sent as they are; the outcome in words. */
export function uploadSection(caller: Caller, reload: () => Promise<void>): HTMLElement {
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
