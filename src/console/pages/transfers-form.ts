import { api, ApiError } from '../api.js';
import { h, icon, status } from '../dom.js';
import { count } from '../format.js';
import type { Va } from '../types.js';

/** What a VA holds of one license, as GET /compliance answers (owned null: unlimited). */
export interface Holding {
  vaId: string;
  tag: string;
  displayName: string;
  owned: number | null;
  inUse: number;
}

export interface TransferFormOptions {
  /** The VAs the caller may operate on, by name: both ends of a transfer are chosen among them. */
  vas: Va[];
  holdings: Holding[];
  /** The source and license to start with (a link from the Licenses page, or the last request). */
  prefill: { from?: string | undefined; tag?: string | undefined };
  /** Reads the page again with this source and license chosen, then says `said`. */
  done: (said: HTMLElement, prefill: { from: string; tag: string }) => Promise<void>;
  say: (said: HTMLElement) => void;
}

const availableOf = (x: Holding) => Math.max(0, (x.owned ?? 0) - x.inUse);

/**
 * The request form: from and to among the VAs the caller may operate on, the license among
 * those the source owns with what is available now, and the quantity. The collector decides:
 * a quantity over what is available is answered 409 and said in words.
 */
export function transferForm(o: TransferFormOptions): HTMLElement {
  const first = o.vas.find((v) => v.id === o.prefill.from) ?? o.vas[0]!;
  const from = h('select', { id: 'transfer-from', name: 'from' }, o.vas.map((v) => h('option', { value: v.id, selected: v === first }, v.name)));
  const to = h('select', { id: 'transfer-to', name: 'to' });
  const tag = h('select', { id: 'transfer-tag', name: 'tag', 'aria-describedby': 'transfer-available' });
  const quantity = h('input', { id: 'transfer-quantity', name: 'quantity', type: 'number', min: 1, step: 1, inputmode: 'numeric', required: true, autocomplete: 'off' });
  const reason = h('input', { id: 'transfer-reason', name: 'reason', maxlength: 500, autocomplete: 'off' });
  const help = h('span', { id: 'transfer-available', class: 'help' });
  const submit = h('button', { type: 'submit', class: 'primary' }, icon('exchange'), h('span', {}, 'Request transfer'));
  const name = (id: string) => o.vas.find((v) => v.id === id)?.name ?? id;
  // Unlimited lines have no quantity to give; a license owned nowhere in the source is not offered.
  const owned = (va: string) => o.holdings.filter((x) => x.vaId === va && x.owned !== null && x.owned > 0).sort((a, b) => a.displayName.localeCompare(b.displayName));
  const holding = () => owned(from.value).find((x) => x.tag === tag.value);

  const describe = () => {
    const x = holding();
    help.textContent = x
      ? `${name(x.vaId)} has ${count(availableOf(x))} of ${x.displayName} available now (${count(x.owned ?? 0)} owned, ${count(x.inUse)} in use).`
      : `${name(from.value)} owns no license it could transfer.`;
    submit.disabled = !x || to.options.length === 0;
  };
  const fill = (wantedTag?: string) => {
    const keep = to.value;
    to.replaceChildren(...o.vas.filter((v) => v.id !== from.value).map((v) => h('option', { value: v.id, selected: v.id === keep }, v.name)));
    const lines = owned(from.value);
    tag.replaceChildren(...lines.map((x) => h('option', { value: x.tag, selected: x.tag === wantedTag }, `${x.displayName} · ${count(availableOf(x))} available`)));
    tag.disabled = lines.length === 0;
    describe();
  };
  from.addEventListener('change', () => fill(tag.value));
  tag.addEventListener('change', describe);
  fill(o.prefill.tag);

  const form = h('form', { class: 'inline-form', id: 'transfer-form', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: 'transfer-from' }, 'From virtual account'), from),
    h('p', { class: 'field' }, h('label', { for: 'transfer-to' }, 'To virtual account'), to),
    h('p', { class: 'field grow' }, h('label', { for: 'transfer-tag' }, 'License'), tag, help),
    h('p', { class: 'field narrow' }, h('label', { for: 'transfer-quantity' }, 'Quantity'), quantity),
    h('p', { class: 'field grow' }, h('label', { for: 'transfer-reason' }, 'Reason (optional)'), reason),
    h('p', { class: 'field' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const x = holding();
    const q = Number(quantity.value);
    if (!x) return;
    if (!Number.isInteger(q) || q < 1) {
      o.say(status('Quantity: say how many licenses to transfer, a whole number of 1 or more.', 'error'));
      return void quantity.focus();
    }
    submit.disabled = true;
    const [src, dst] = [from.value, to.value];
    const body = { fromVaId: src, toVaId: dst, tag: x.tag, quantity: q, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) };
    void api('POST', '/licenses/transfers', body)
      .then(() => o.done(status(`${count(q)} of ${x.displayName} transferred from ${name(src)} to ${name(dst)}: provisional until the upstream confirms it.`), { from: src, tag: x.tag }))
      .catch((err: unknown) => o.done(status(refusal(err, x, q), 'error'), { from: src, tag: x.tag }))
      .finally(() => (submit.disabled = false));
  });
  return h('section', { 'aria-labelledby': 'transfer-title', class: 'panel', id: 'transfer-request' },
    h('h2', { id: 'transfer-title' }, 'Request a transfer'),
    h('p', {}, 'The licenses move at once in both virtual accounts; the transfer stays provisional until the upstream confirms it.'),
    form,
  );
}

/** A refusal in words; the collector's own sentence names the available quantity for a 409. */
function refusal(err: unknown, x: Holding, q: number): string {
  const e = err as Error;
  if (e instanceof ApiError && e.code === 'not_enough_available') {
    return `Not transferred, nothing changed: ${e.message.replace(x.tag, x.displayName)}. Ask for at most what is available.`;
  }
  return `The transfer of ${count(q)} ${x.displayName} was not made: ${e.message}`;
}
