import { api } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import type { Transfer } from './transfers.js';

/**
 * Settling a provisional transfer by hand, in a modal dialog: the operator chooses confirmed or
 * reverted and gives the reason, and only the dialog's own button sends it. When Cisco already
 * accepted the transfer's call, the dialog says Cisco may still apply it, before anything is sent.
 */
export function openSettleDialog(t: Transfer, what: string, source: string, host: HTMLElement, done: (said: HTMLElement) => Promise<void>): void {
  const choice = (as: 'confirmed' | 'reverted', text: string) => {
    const id = `settle-as-${as}`;
    return h('p', { class: 'choice' },
      h('input', { type: 'radio', name: 'settle-as', id, value: as, required: true }),
      h('label', { for: id }, text));
  };
  const reason = h('textarea', { id: 'settle-reason', name: 'reason', rows: 3, maxlength: 500, required: true, 'aria-describedby': 'settle-reason-help' });
  const problem = h('div', { id: 'settle-problem' });
  const send = h('button', { type: 'submit', class: 'primary' }, icon('check'), h('span', {}, 'Settle transfer'));
  const cancel = h('button', { type: 'button' }, h('span', {}, 'Cancel'));
  const cisco = t.ciscoAcceptedAt
    ? h('p', { class: 'notice notice-warning', id: 'settle-cisco' }, icon('warning'),
        h('span', {}, `Cisco accepted this transfer's call on ${when(t.ciscoAcceptedAt)}: Cisco may still apply it. Reverting it here does not take it back at Cisco; check both virtual accounts in Cisco's portal.`))
    : null;
  const form = h('form', { id: 'settle-form', novalidate: true },
    h('h2', { id: 'settle-title' }, `Settle the transfer of ${what}`),
    h('p', {}, `Provisional since ${when(t.requestedAt)}. Settle it by hand only when the upstream will never answer it; either way it is never sent again.`),
    cisco,
    h('fieldset', {},
      h('legend', {}, 'Settle as'),
      choice('confirmed', 'Confirmed: the upstream holds it; the licenses stay where they are now'),
      choice('reverted', `Reverted: undone here; the ${count(t.quantity)} go back to ${source}`),
    ),
    h('p', { class: 'field' }, h('label', { for: 'settle-reason' }, 'Reason'), reason,
      h('span', { id: 'settle-reason-help', class: 'help' }, 'Why you settle it by hand: 10 to 500 characters, kept in the audit trail.')),
    problem,
    h('p', { class: 'buttons' }, send, cancel),
  );
  const dialog = h('dialog', { class: 'settle-dialog', id: 'settle-dialog', 'aria-labelledby': 'settle-title' }, form);
  dialog.addEventListener('close', () => dialog.remove());
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const as = (form.querySelector('input[name="settle-as"]:checked') as HTMLInputElement | null)?.value;
    const why = reason.value.trim();
    if (!as) return void problem.replaceChildren(status('Choose confirmed or reverted.', 'error'));
    if (why.length < 10) {
      problem.replaceChildren(status('Reason: say why you settle it by hand, in at least 10 characters.', 'error'));
      return void reason.focus();
    }
    send.disabled = cancel.disabled = true;
    void api<{ state: string; warning?: string }>('POST', `/licenses/transfers/${encodeURIComponent(t.id)}/settle`, { as, reason: why })
      .then((r) => {
        dialog.close();
        const said = `The transfer of ${what} was ${as === 'confirmed' ? 'confirmed' : 'reverted'} by hand.${r.warning ? ` ${r.warning}.` : ''}`;
        return done(status(said));
      })
      .catch((err: unknown) => {
        dialog.close();
        return done(status(`The transfer was not settled: ${(err as Error).message}`, 'error'));
      });
  });
  host.append(dialog);
  dialog.showModal();
}
