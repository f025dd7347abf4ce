import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { count, when } from '../format.js';
import { secretPanel } from '../secret-panel.js';
import { may, vasWith, type Caller } from '../session.js';
import type { Va } from '../types.js';

interface Token {
  id: string;
  vaId: string;
  description: string;
  expiresAt: string;
  maxUses: number;
  uses: number;
  state: string;
  createdAt: string;
  revokedAt: string | null;
}

/** Registration tokens: what devices register with. Made and revoked only by a role that may operate on the token's VA. */
export async function tokensPage(main: HTMLElement, caller: Caller): Promise<void> {
  const [vas, tokens] = await Promise.all([api<{ items: Va[] }>('GET', '/virtual-accounts'), api<{ items: Token[] }>('GET', '/tokens')]);
  const operable = vasWith(caller, 'operate');
  const creatable = vas.items.filter((v) => operable === 'all' || operable.includes(v.id));
  const notice = h('div', { id: 'tokens-notice' });
  const list = h('div', { id: 'tokens-list' });
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));

  const reload = async () => {
    const fresh = await api<{ items: Token[] }>('GET', '/tokens');
    list.replaceChildren(tokenTable(fresh.items, vaName, caller, revoke));
  };
  const revoke = async (t: Token) => {
    if (!confirm(`Revoke the token "${t.description}"? Devices can no longer register with it.`)) return;
    // The table is reloaded before the notice is shown, so the notice never announces a state the table does not show yet.
    let said: HTMLElement;
    try {
      await api('POST', `/tokens/${encodeURIComponent(t.id)}/revoke`);
      said = status(`Token "${t.description}" revoked.`);
    } catch (e) {
      said = status(`The token was not revoked: ${(e as Error).message}`, 'error');
    }
    await reload();
    notice.replaceChildren(said);
  };

  list.append(tokenTable(tokens.items, vaName, caller, revoke));
  main.replaceChildren(h('h1', {}, 'Registration tokens'));
  append(main, [
    h('p', { class: 'lede' }, 'Devices register with a token of their virtual account. Its secret is shown once, when it is made.'),
    creatable.length ? createForm(creatable, notice, reload) : null,
    notice,
    h('section', { 'aria-labelledby': 'tokens-title' }, h('h2', { id: 'tokens-title' }, 'Tokens'), list),
  ]);
}

function createForm(vas: Va[], notice: HTMLElement, reload: () => Promise<void>): HTMLElement {
  const va = h('select', { id: 'token-va', name: 'va' }, vas.map((v) => h('option', { value: v.id }, v.name)));
  const description = h('input', { id: 'token-description', name: 'description', required: true, maxlength: 500, autocomplete: 'off' });
  const days = h('input', { id: 'token-days', name: 'days', type: 'number', min: 1, max: 3650, value: 30, required: true });
  const uses = h('input', { id: 'token-uses', name: 'uses', type: 'number', min: 1, max: 1000000, value: 1, required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, icon('plus'), h('span', {}, 'Create token'));
  const form = h('form', { class: 'inline-form', id: 'token-create', 'aria-labelledby': 'create-title', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: 'token-va' }, 'Virtual account'), va),
    h('p', { class: 'field grow' }, h('label', { for: 'token-description' }, 'Description'), description),
    h('p', { class: 'field narrow' }, h('label', { for: 'token-days' }, 'Valid for (days)'), days),
    h('p', { class: 'field narrow' }, h('label', { for: 'token-uses' }, 'Uses'), uses),
    h('p', { class: 'field' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = { vaId: va.value, description: description.value.trim(), expiresInDays: Number(days.value), maxUses: Number(uses.value) };
    if (!body.description) return void notice.replaceChildren(status('Describe what the token is for (the devices or the site).', 'error'));
    if (!Number.isInteger(body.expiresInDays) || body.expiresInDays < 1 || body.expiresInDays > 3650) return void notice.replaceChildren(status('Valid for: a whole number of days from 1 to 3650.', 'error'));
    if (!Number.isInteger(body.maxUses) || body.maxUses < 1 || body.maxUses > 1_000_000) return void notice.replaceChildren(status('Uses: a whole number from 1 to 1,000,000.', 'error'));
    submit.disabled = true;
    void api<Token & { secret: string }>('POST', '/tokens', body)
      .then(async (t) => {
        description.value = '';
        await reload();
        notice.replaceChildren(secretPanel({
          prefix: 'token', title: `Token "${t.description}" created`, secret: t.secret, label: 'Token secret',
          help: 'it is shown only this once. Give it to the devices that register with it.',
        }));
        notice.querySelector<HTMLElement>('#token-secret')?.focus();
      })
      .catch((err: unknown) => notice.replaceChildren(status(`The token was not created: ${(err as Error).message}`, 'error')))
      .finally(() => (submit.disabled = false));
  });
  return h('section', { 'aria-labelledby': 'create-title', class: 'panel' }, h('h2', { id: 'create-title' }, 'Create a token'), form);
}

function tokenTable(tokens: Token[], vaName: Map<string, string>, caller: Caller, revoke: (t: Token) => Promise<void>): HTMLElement {
  if (!tokens.length) return status('No registration token yet.');
  const actions = tokens.some((t) => may(caller, 'operate', t.vaId));
  return h('table', { id: 'tokens' },
    h('caption', { class: 'visually-hidden' }, 'Registration tokens, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Description'), h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col', class: 'num' }, 'Uses'), h('th', { scope: 'col' }, 'Expires'), h('th', { scope: 'col' }, 'Created'),
      actions ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null,
    )),
    h('tbody', {}, [...tokens].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map((t) =>
      h('tr', { 'data-token': t.id },
        h('th', { scope: 'row' }, t.description),
        h('td', {}, vaName.get(t.vaId) ?? t.vaId),
        h('td', { class: 'state' }, h('span', { class: `badge tone-${t.state === 'active' ? 'ok' : 'plain'}` }, icon(t.state === 'active' ? 'check' : 'block'), h('span', {}, t.state))),
        h('td', { class: 'num' }, `${count(t.uses)} of ${count(t.maxUses)}`),
        h('td', {}, when(t.expiresAt)),
        h('td', {}, when(t.createdAt)),
        actions ? h('td', {}, t.state === 'active' && may(caller, 'operate', t.vaId)
          ? h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${t.description}`, onclick: () => void revoke(t) }, icon('block'), h('span', {}, 'Revoke'))
          : null) : null,
      ),
    )),
  );
}
