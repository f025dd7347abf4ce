import { api } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';

/** A connected sync's record on the audit trail: its outcome and what it carried. */
interface SyncEvent {
  id: number;
  at: string;
  type: string;
  actor: string;
  details: {
    parts?: number;
    reports?: { sent: number; accepted: number; rejected: number };
    usage?: unknown;
    positions?: unknown;
    code?: string;
    message?: string;
  };
}

const OUTPOST = ['sync.completed', 'sync.failed'];
const CISCO = ['cisco.cloud_synced', 'cisco.cloud_sync_failed'];

/**
 * The latest syncs, newest first. Each run is an event (the trail is where they are kept), so the
 * history of syncs is read from there, for the upstream in use.
 */
export async function syncRuns(cisco: boolean, limit = 20): Promise<SyncEvent[]> {
  const lists = await Promise.all((cisco ? CISCO : OUTPOST).map((t) => api<{ items: SyncEvent[] }>('GET', `/events?type=${t}&limit=${limit}`)));
  return lists.flatMap((l) => l.items).sort((a, b) => b.id - a.id).slice(0, limit);
}

const failed = (e: SyncEvent) => e.type.endsWith('failed');

function carried(e: SyncEvent): string {
  const d = e.details;
  if (d.reports) return `${count(d.parts ?? 0)} parts, ${count(d.reports.sent)} reports sent, ${count(d.reports.accepted)} accepted${d.reports.rejected ? `, ${count(d.reports.rejected)} rejected` : ''}`;
  if (d.parts !== undefined) return `${count(d.parts)} parts`;
  if (d.usage !== undefined || d.positions !== undefined) return [d.usage !== undefined ? `usage ${JSON.stringify(d.usage)}` : null, d.positions !== undefined ? `positions ${JSON.stringify(d.positions)}` : null].filter(Boolean).join('; ');
  return '';
}

export function syncTable(runs: SyncEvent[]): HTMLElement {
  if (!runs.length) return status('No sync has run yet.');
  return h('table', { id: 'syncs' },
    h('caption', { class: 'visually-hidden' }, 'Syncs with the upstream, newest first'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Outcome'), h('th', { scope: 'col' }, 'Carried'), h('th', { scope: 'col' }, 'Started by'))),
    h('tbody', {}, runs.map((e) =>
      h('tr', { 'data-sync': String(e.id), 'data-outcome': failed(e) ? 'failed' : 'synced' },
        h('td', {}, when(e.at)),
        h('td', { class: 'outcome' },
          h('span', { class: `badge tone-${failed(e) ? 'bad' : 'ok'}` }, icon(failed(e) ? 'warning' : 'check'), h('span', {}, failed(e) ? 'Failed' : 'Synced')),
          failed(e) ? h('span', {}, ` ${e.details.code ?? ''}: ${e.details.message ?? ''}`) : null),
        h('td', { class: 'carried' }, carried(e)),
        h('td', {}, e.actor.replace(/ \(session .*\)$/, '')),
      ),
    )),
  );
}

interface SyncAnswer {
  result: { status: 'synced' | 'failed'; parts: number; reports: { sent: number; accepted: number; rejected: number }; error: { code: string; message: string } | null };
}

/** "Sync now" for those who operate: waits for the run, reloads the page's figures, then says how it went. */
export function syncNow(reload: () => Promise<void>): HTMLElement {
  const notice = h('div', { id: 'sync-notice', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'sync-now' }, icon('exchange'), h('span', {}, 'Sync now')) as HTMLButtonElement;
  button.addEventListener('click', () => {
    button.disabled = true;
    notice.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Syncing with the upstream…'));
    let said: HTMLElement;
    void api<SyncAnswer>('POST', '/exchange/sync', { wait: true })
      .then(({ result: r }) => {
        said = r.status === 'synced'
          ? status(`Synced: ${count(r.parts)} parts, ${count(r.reports.sent)} reports sent, ${count(r.reports.accepted)} accepted${r.reports.rejected ? `, ${count(r.reports.rejected)} rejected` : ''}.`)
          : status(`The sync failed: ${r.error?.message ?? 'no reason given'} (${r.error?.code ?? 'failed'}).`, 'error');
      })
      .catch((e: unknown) => (said = status(`The sync did not run: ${(e as Error).message}`, 'error')))
      .then(() => reload())
      .finally(() => {
        // The figures first, then the notice: it never speaks of a run the table does not show yet.
        notice.replaceChildren(said);
        button.disabled = false;
        notice.dataset.answer = String(Number(notice.dataset.answer ?? 0) + 1);
      });
  });
  return h('div', { class: 'sync-now' }, button, notice);
}
