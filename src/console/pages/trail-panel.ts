import { h, icon } from '../dom.js';
import { count, when } from '../format.js';

/** GET /events/verify's answer, as far as the page shows it. */
export interface TrailReport {
  intact: boolean;
  firstBrokenId: number | null;
  head: { id: number; hash: string };
  events: number;
  checkpoints: { source: string; checked: number; matched: number; latest: { eventId: number; at: string } | null };
  restores: { eventId: number; at: string; backupHead: number; supersededCheckpoints: number }[];
  finding: { kind: string; eventId: number; range: { from: number; to: number }; message: string } | null;
}

/**
 * The chain check's result: intact, or where the trail breaks, and the signed checkpoints held
 * against it. "Verify now" asks again; each answer drawn is counted in data-answer.
 */
export function verifyPanel(check: () => Promise<TrailReport>): HTMLElement {
  const result = h('div', { id: 'verify-result', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Checking the chain…'));
  const button = h('button', { type: 'button', id: 'verify-now' }, icon('check'), h('span', {}, 'Verify now'));
  let answers = 0;
  const run = async () => {
    button.disabled = true;
    try {
      const r = await check();
      result.replaceChildren(...report(r));
      Object.assign(result.dataset, {
        intact: String(r.intact), head: String(r.head.id), events: String(r.events),
        checked: String(r.checkpoints.checked), matched: String(r.checkpoints.matched), finding: r.finding?.kind ?? '',
      });
    } catch (e) {
      result.replaceChildren(h('p', { class: 'notice notice-error', role: 'alert' }, icon('warning'), h('span', {}, `The chain could not be checked: ${(e as Error).message}`)));
      result.dataset.intact = '';
    }
    result.dataset.answer = String(++answers);
    button.disabled = false;
  };
  button.addEventListener('click', () => void run());
  void run();
  return h('section', { 'aria-labelledby': 'verify-title', class: 'panel', id: 'verify' },
    h('div', { class: 'section-head' }, h('h2', { id: 'verify-title' }, 'Chain verification'), button),
    result,
  );
}

function report(r: TrailReport): HTMLElement[] {
  const verdict = r.intact
    ? h('p', { class: 'verdict' }, h('span', { class: 'badge tone-ok' }, icon('check'), h('span', {}, 'Intact')),
        h('span', {}, ` All ${count(r.events)} events chain from the first to event ${r.head.id}${r.checkpoints.checked ? ', and every checkpoint held matches' : '; no signed checkpoint is held yet to hold them against'}.`))
    : h('p', { class: 'verdict' }, h('span', { class: 'badge tone-bad' }, icon('warning'), h('span', {}, 'Broken')),
        h('span', { class: 'finding' }, ` ${r.finding?.message ?? `event ${r.firstBrokenId} does not chain to the one before it`}`));
  const cp = r.checkpoints;
  const pairs: [string, string][] = [
    ['Events checked', count(r.events)],
    ['Head', `event ${r.head.id}, hash ${r.head.hash.slice(0, 16)}…`],
    ['Checkpoints held', `${count(cp.checked)} checked, ${count(cp.matched)} matched (${cp.source === 'local' ? 'kept by this collector' : 'from a file'})`],
    ['Latest checkpoint', cp.latest ? `event ${cp.latest.eventId}, signed ${when(cp.latest.at)}` : 'none yet'],
  ];
  if (!r.intact && r.finding) {
    const { from, to } = r.finding.range;
    pairs.push(['Where it breaks', from === to ? `event ${from}` : `between events ${from} and ${to}`]);
  }
  if (r.restores.length) pairs.push(['Restores', r.restores.map((x) => `at event ${x.eventId} (${when(x.at)}), back to event ${x.backupHead}`).join('; ')]);
  pairs.push(['Checked', when(new Date().toISOString())]);
  return [verdict, h('dl', { class: 'pairs' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))];
}
