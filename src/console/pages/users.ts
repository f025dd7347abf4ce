import { actThenSay } from '../act.js';
import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { when } from '../format.js';
import { may, type Caller, type Grant, type Role } from '../session.js';
import { secretPanel } from '../secret-panel.js';

interface Va {
  id: string;
  name: string;
}
interface User {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  roles: Grant[];
  locked: boolean;
  createdAt: string;
  passwordChangedAt: string;
}
interface ApiToken {
  id: string;
  name: string;
  roles: Grant[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}
interface SignIn {
  at: string;
  details: { user?: unknown };
}

const ROLES: [Role, string][] = [
  ['admin', 'admin: everything'],
  ['operator', 'operator: daily work'],
  ['auditor', 'auditor: reads all'],
  ['va-admin', 'va-admin: one VA'],
  ['va-viewer', 'va-viewer: reads one VA'],
];
const VA_ROLES: Role[] = ['va-admin', 'va-viewer'];
/** Sign-ins looked back on for "last sign-in": sessions are what the trail records of them. */
const SIGN_INS = 1000;

/** Users, their roles and API tokens: an admin's page. A user opened for changes is #/users/<id>. */
export async function usersPage(main: HTMLElement, caller: Caller): Promise<void> {
  if (!may(caller, 'admin')) {
    // Reached by a typed address: no data is asked for, only the refusal is said.
    main.replaceChildren(h('h1', {}, 'Users'), status('Only an admin may see and change users, and your roles do not include admin.', 'error'));
    return;
  }
  let selected = decodeURIComponent(location.hash.split('/')[2] ?? '');
  const vas = await api<{ items: Va[] }>('GET', '/virtual-accounts');
  const vaName = new Map(vas.items.map((v) => [v.id, v.name]));
  const roleText = (g: Grant) => (g.vaId ? `${g.role} on ${vaName.get(g.vaId) ?? g.vaId}` : g.role);

  const listNotice = h('div', { id: 'users-notice', tabindex: '-1' });
  const locked = h('div', { id: 'users-locked' });
  const list = h('div', { id: 'users-list' });
  const detail = h('div', { id: 'user-detail-body' });
  const userNotice = h('div', { id: 'user-notice', tabindex: '-1' });
  let users: User[] = [];
  let tokens: ApiToken[] = [];
  let answers = 0;

  /** Fetches what the page shows and draws it: every action reloads before it says anything. */
  const reload = async () => {
    const [u, signIns] = await Promise.all([
      api<{ items: User[] }>('GET', '/users'),
      api<{ items: SignIn[] }>('GET', `/events?type=user.signed_in&limit=${SIGN_INS}`),
    ]);
    users = u.items;
    const open = users.find((x) => x.id === selected || x.name === selected);
    tokens = open ? (await api<{ items: ApiToken[] }>('GET', `/users/${encodeURIComponent(open.id)}/tokens`)).items : [];
    const last = new Map<string, string>();
    for (const s of signIns.items) if (typeof s.details.user === 'string' && !last.has(s.details.user)) last.set(s.details.user, s.at);
    const lockedNames = users.filter((x) => x.locked).map((x) => x.name);
    locked.replaceChildren(lockedNames.length
      ? h('p', { class: 'notice notice-error' }, icon('block'), h('span', {}, `Locked after failed sign-ins: ${lockedNames.join(', ')}. Enable an account to unlock it.`))
      : '');
    list.replaceChildren(userTable(users, last, roleText, selected));
    detail.replaceChildren(open ? userDetail(open, tokens, vas.items, roleText, actions) : selected ? status(`There is no user ${selected} (any more).`) : '');
    list.dataset.answer = String(++answers);
  };
  const act = (where: HTMLElement, change: () => Promise<HTMLElement>, failed: string) =>
    actThenSay({ where, change, failed, reload, unread: 'The users could not be reloaded' });
  const path = (u: User) => `/users/${encodeURIComponent(u.id)}`;
  const actions: DetailActions = {
    saveRoles: (u, roles) => act(userNotice, async () => (await api('PATCH', path(u), { roles }), status(`The roles of ${u.name} are saved.`)), 'The roles were not saved'),
    setStatus: (u, st) => act(userNotice, async () => {
      await api('PATCH', path(u), { status: st });
      return status(st === 'active' ? `${u.name} is enabled${u.locked ? ' and unlocked' : ''}.` : `${u.name} is disabled: it can no longer sign in, nor can its tokens.`);
    }, 'The change was not made'),
    setPassword: (u, password) => act(userNotice, async () => (await api('POST', `${path(u)}/password`, { password }), status(`The password of ${u.name} is set.`)), 'The password was not set'),
    remove: (u) => {
      if (!confirm(`Remove the user ${u.name} and its API tokens?`)) return Promise.resolve(false);
      return act(listNotice, async () => {
        await api('DELETE', path(u));
        // The address no longer names a user; replaced without a navigation, so the notice stays.
        history.replaceState(null, '', '#/users');
        selected = '';
        detailSection?.remove();
        return status(`User ${u.name} removed.`);
      }, 'The user was not removed');
    },
    makeToken: (u, body) => act(userNotice, async () => {
      const t = await api<ApiToken & { secret: string }>('POST', `${path(u)}/tokens`, body);
      return secretPanel({
        prefix: 'user-token', title: `API token "${t.name}" made for ${u.name}`, secret: t.secret, label: 'API token secret',
        help: 'it is shown only this once. Scripts send it as Authorization: Bearer <secret>.',
      });
    }, 'The token was not made'),
    revokeToken: (u, t) => {
      if (!confirm(`Revoke the API token "${t.name}" of ${u.name}? Scripts using it stop working.`)) return Promise.resolve(false);
      return act(userNotice, async () => (await api('DELETE', `${path(u)}/tokens/${encodeURIComponent(t.id)}`), status(`API token "${t.name}" revoked.`)), 'The token was not revoked');
    },
  };

  await reload();
  const addForm = addUserForm(vas.items, (body) => act(listNotice, async () => {
    await api('POST', '/users', body);
    return status(`User ${body.name} added.`);
  }, 'The user was not added'));
  const detailSection = selected ? h('section', { 'aria-labelledby': 'user-detail-title', class: 'panel', id: 'user-detail' },
    h('h2', { id: 'user-detail-title', tabindex: '-1' }, `User ${users.find((x) => x.id === selected || x.name === selected)?.name ?? selected}`), userNotice, detail) : null;
  main.replaceChildren();
  append(main, [
    h('h1', {}, 'Users'),
    h('p', { class: 'lede' }, 'Who may sign in, with which roles, and their API tokens. Five failed sign-ins in a row lock an account; enabling it unlocks it.'),
    locked,
    h('section', { 'aria-labelledby': 'user-add-title', class: 'panel' }, h('h2', { id: 'user-add-title' }, 'Add a user'), addForm),
    listNotice,
    h('section', { 'aria-labelledby': 'users-title' }, h('h2', { id: 'users-title' }, 'Users'), list),
    detailSection,
  ]);
}

interface DetailActions {
  saveRoles(u: User, roles: Grant[]): Promise<boolean>;
  setStatus(u: User, s: 'active' | 'disabled'): Promise<boolean>;
  setPassword(u: User, password: string): Promise<boolean>;
  remove(u: User): Promise<boolean>;
  makeToken(u: User, body: { name: string; expiresInDays: number }): Promise<boolean>;
  revokeToken(u: User, t: ApiToken): Promise<boolean>;
}

function stateOf(u: User): HTMLElement[] {
  const out = [h('span', { class: `badge tone-${u.status === 'active' ? 'ok' : 'plain'}` }, icon(u.status === 'active' ? 'check' : 'block'), h('span', {}, u.status === 'active' ? 'enabled' : 'disabled'))];
  if (u.locked) out.push(h('span', { class: 'badge tone-bad locked' }, icon('warning'), h('span', {}, 'locked')));
  return out;
}

function userTable(users: User[], lastSignIn: Map<string, string>, roleText: (g: Grant) => string, selected: string): HTMLElement {
  if (!users.length) return status('No user yet: the collector is run from its host alone.');
  return h('table', { id: 'users' },
    h('caption', { class: 'visually-hidden' }, 'Users, by name'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Roles'), h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Last sign-in'), h('th', { scope: 'col' }, 'Password set'), h('th', { scope: 'col' }, 'Added'),
    )),
    h('tbody', {}, users.map((u) =>
      h('tr', { 'data-user': u.id, 'data-name': u.name, class: u.locked ? 'tone-bad' : null },
        h('th', { scope: 'row' }, h('a', { href: `#/users/${encodeURIComponent(u.id)}`, 'aria-current': u.id === selected || u.name === selected ? 'true' : null, 'aria-label': `Manage ${u.name}` }, u.name)),
        h('td', { class: 'roles' }, u.roles.map(roleText).join(', ')),
        h('td', { class: 'state' }, stateOf(u)),
        h('td', { class: 'last-sign-in' }, lastSignIn.has(u.name) ? when(lastSignIn.get(u.name)) : 'none recorded'),
        h('td', {}, when(u.passwordChangedAt)),
        h('td', {}, when(u.createdAt)),
      ),
    )),
  );
}

/** A role and, for a VA role, its VA: the pair of selects the add form and the roles editor share. */
function roleFields(vas: Va[], n: string, g: Grant | null): { role: HTMLSelectElement; va: HTMLSelectElement; fields: HTMLElement[] } {
  // A new user starts with the role that changes nothing: more is a choice, not a default.
  const role = h('select', { id: `role-${n}`, name: 'role' }, ROLES.map(([r, label]) => h('option', { value: r, selected: (g?.role ?? 'auditor') === r }, label)));
  const va = h('select', { id: `role-va-${n}`, name: 'vaId', 'aria-describedby': 'role-va-help' },
    h('option', { value: '' }, 'Every VA'), vas.map((v) => h('option', { value: v.id, selected: g?.vaId === v.id }, v.name)));
  // A VA role names its VA; a global role names none: the select follows the role.
  const sync = () => {
    const scoped = VA_ROLES.includes(role.value as Role);
    if (scoped && !va.value && vas[0]) va.value = vas[0].id;
    if (!scoped) va.value = '';
    va.disabled = !scoped;
  };
  role.addEventListener('change', sync);
  sync();
  return {
    role, va,
    fields: [
      h('p', { class: 'field' }, h('label', { for: role.id }, n === 'new' ? 'Role' : `Role ${n}`), role),
      h('p', { class: 'field' }, h('label', { for: va.id }, n === 'new' ? 'Virtual account' : `Virtual account of role ${n}`), va),
    ],
  };
}

const grantOf = (role: HTMLSelectElement, va: HTMLSelectElement): Grant => ({ role: role.value as Role, vaId: va.value || null });

function addUserForm(vas: Va[], add: (body: { name: string; password: string; roles: Grant[] }) => Promise<boolean>): HTMLElement {
  const name = h('input', { id: 'user-name', name: 'name', required: true, maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
  const password = h('input', { id: 'user-new-password', name: 'password', type: 'password', required: true, minlength: 12, maxlength: 1024, autocomplete: 'new-password', 'aria-describedby': 'password-help' });
  const r = roleFields(vas, 'new', null);
  const submit = h('button', { type: 'submit', class: 'primary' }, icon('plus'), h('span', {}, 'Add user'));
  const form = h('form', { class: 'inline-form', id: 'user-add', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: name.id }, 'User name'), name),
    h('p', { class: 'field' }, h('label', { for: password.id }, 'Password'), password),
    r.fields, h('p', { class: 'field' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit.disabled = true;
    void add({ name: name.value.trim(), password: password.value, roles: [grantOf(r.role, r.va)] }).then((added) => {
      submit.disabled = false;
      // A refused form keeps what was typed, to be corrected.
      if (added) {
        form.reset();
        r.role.dispatchEvent(new Event('change'));
      }
    });
  });
  return h('div', {}, form,
    h('p', { class: 'help', id: 'password-help' }, 'At least 12 characters, not containing the user name.'),
    h('p', { class: 'help', id: 'role-va-help' }, 'va-admin and va-viewer act on one virtual account; the other roles on every one.'));
}

function userDetail(u: User, tokens: ApiToken[], vas: Va[], roleText: (g: Grant) => string, a: DetailActions): HTMLElement {
  // Roles: one pair of selects per role held, one more added by the button.
  const rows = h('div', { class: 'role-rows' });
  const pairs: { role: HTMLSelectElement; va: HTMLSelectElement }[] = [];
  const addRow = (g: Grant | null) => {
    const n = String(pairs.length + 1);
    const r = roleFields(vas, n, g);
    pairs.push(r);
    const row = h('div', { class: 'inline-form role-row' }, r.fields);
    const drop = h('button', { type: 'button', 'aria-label': `Remove role ${n}` }, h('span', {}, 'Remove'));
    drop.addEventListener('click', () => {
      pairs.splice(pairs.indexOf(r), 1);
      row.remove();
    });
    row.append(h('p', { class: 'field' }, drop));
    rows.append(row);
  };
  u.roles.forEach(addRow);
  const roleForm = h('form', { id: 'user-roles', novalidate: true },
    rows,
    h('p', { class: 'buttons' },
      h('button', { type: 'button', id: 'role-add', onclick: () => addRow(null) }, icon('plus'), h('span', {}, 'Add a role')),
      h('button', { type: 'submit', class: 'primary' }, h('span', {}, 'Save roles'))),
  );
  roleForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void a.saveRoles(u, pairs.map((p) => grantOf(p.role, p.va)));
  });

  const password = h('input', { id: 'user-password', name: 'password', type: 'password', minlength: 12, maxlength: 1024, autocomplete: 'new-password', 'aria-describedby': 'password-help' });
  const passwordForm = h('form', { class: 'inline-form', id: 'user-password-form', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: password.id }, 'New password'), password),
    h('p', { class: 'field' }, h('button', { type: 'submit' }, icon('key'), h('span', {}, 'Set password'))),
  );
  passwordForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void a.setPassword(u, password.value);
  });

  const enable = u.status === 'disabled' || u.locked;
  const statusButton = h('button', { type: 'button', id: 'user-status', class: enable ? 'primary' : 'danger', onclick: () => void a.setStatus(u, enable ? 'active' : 'disabled') },
    icon(enable ? 'check' : 'block'), h('span', {}, enable ? (u.locked ? `Enable and unlock ${u.name}` : `Enable ${u.name}`) : `Disable ${u.name}`));

  const tokenName = h('input', { id: 'user-token-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const tokenDays = h('input', { id: 'user-token-days', name: 'days', type: 'number', min: 1, max: 3650, value: 90, required: true });
  const tokenForm = h('form', { class: 'inline-form', id: 'user-token-create', novalidate: true },
    h('p', { class: 'field grow' }, h('label', { for: tokenName.id }, 'Token name'), tokenName),
    h('p', { class: 'field narrow' }, h('label', { for: tokenDays.id }, 'Valid for (days)'), tokenDays),
    h('p', { class: 'field' }, h('button', { type: 'submit', class: 'primary' }, icon('plus'), h('span', {}, 'Make token'))),
  );
  tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void a.makeToken(u, { name: tokenName.value.trim(), expiresInDays: Number(tokenDays.value) });
  });

  return h('div', {},
    h('dl', { class: 'pairs' },
      h('dt', {}, 'Status'), h('dd', { class: 'state' }, stateOf(u)),
      h('dt', {}, 'Roles'), h('dd', {}, u.roles.map(roleText).join(', ')),
      h('dt', {}, 'Password set'), h('dd', {}, when(u.passwordChangedAt))),
    h('p', { class: 'buttons' }, statusButton,
      h('button', { type: 'button', id: 'user-remove', class: 'danger', onclick: () => void a.remove(u) }, icon('block'), h('span', {}, `Remove ${u.name}`))),
    h('h3', {}, 'Roles'), roleForm,
    h('h3', {}, 'Password'), passwordForm,
    h('h3', {}, 'API tokens'),
    h('p', { class: 'help' }, 'For scripts: a token carries its user\'s roles, and stops working when it is revoked, expires, or its user is disabled.'),
    tokenTable(u, tokens, roleText, a), tokenForm,
  );
}

function tokenTable(u: User, tokens: ApiToken[], roleText: (g: Grant) => string, a: DetailActions): HTMLElement {
  if (!tokens.length) return status(`${u.name} has no API token.`);
  const now = Date.now();
  const stateOfToken = (t: ApiToken) => (t.revokedAt ? 'revoked' : Date.parse(t.expiresAt) <= now ? 'expired' : 'active');
  return h('table', { id: 'user-tokens' },
    h('caption', { class: 'visually-hidden' }, `API tokens of ${u.name}, oldest first`),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Roles'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Made'),
      h('th', { scope: 'col' }, 'Expires'), h('th', { scope: 'col' }, 'Last used'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
    )),
    h('tbody', {}, tokens.map((t) => {
      const st = stateOfToken(t);
      return h('tr', { 'data-token': t.id },
        h('th', { scope: 'row' }, t.name),
        h('td', {}, t.roles.map(roleText).join(', ')),
        h('td', { class: 'state' }, h('span', { class: `badge tone-${st === 'active' ? 'ok' : 'plain'}` }, icon(st === 'active' ? 'check' : 'block'), h('span', {}, st))),
        h('td', {}, when(t.createdAt)),
        h('td', {}, when(t.expiresAt)),
        h('td', {}, when(t.lastUsedAt)),
        h('td', {}, st === 'active'
          ? h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${t.name}`, onclick: () => void a.revokeToken(u, t) }, icon('block'), h('span', {}, 'Revoke'))
          : null),
      );
    })),
  );
}
