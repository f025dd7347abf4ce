import { api } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { when } from '../format.js';
import type { Caller, Role } from '../session.js';

interface Va {
  id: string;
  name: string;
}
interface AccessRequest {
  id: string;
  user: string;
  vaId: string;
  va: string;
  role: 'va-admin' | 'va-viewer';
  justification: string;
  state: 'pending' | 'approved' | 'denied' | 'withdrawn';
  createdAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  grantedRole: Role | null;
  reason: string | null;
}

const ROLE_TEXT: Record<Role, string> = {
  'va-viewer': 'va-viewer: read this VA',
  'va-admin': 'va-admin: operate this VA',
  auditor: 'auditor: read every VA',
  operator: 'operator: operate every VA',
  admin: 'admin: everything',
};
const isAdmin = (c: Caller) => c.grants.some((g) => g.role === 'admin' && g.vaId === null);
/** Whether the caller settles requests of some VA: the collector's admins, and each VA's va-admins. */
export const approves = (c: Caller) => isAdmin(c) || c.grants.some((g) => g.role === 'va-admin');

/**
 * Requests: a user asks for a role on a VA it has none on, and follows the outcome; an admin
 * or a VA's va-admin approves (choosing the role) or denies (with a reason) what waits.
 */
export async function accessPage(main: HTMLElement, caller: Caller): Promise<void> {
  const notice = h('div', { id: 'access-notice', 'data-answer': '0' });
  const pendingBox = h('div', { id: 'pending-requests' });
  const askBox = h('div', { id: 'request-access' });
  const mineBox = h('div', { id: 'my-requests' });
  let answers = 0;
  const say = (said: HTMLElement) => {
    notice.replaceChildren(said);
    notice.dataset.answer = String(++answers);
  };
  /** Reloads every list first, then says what happened: the notice never runs ahead of the page. */
  const settle = async (said: HTMLElement) => {
    await load();
    say(said);
  };
  const load = async () => {
    const [vas, mine, pending] = await Promise.all([
      api<{ items: Va[] }>('GET', '/access/virtual-accounts'),
      api<{ items: AccessRequest[] }>('GET', '/access/requests/mine'),
      approves(caller) ? api<{ items: AccessRequest[] }>('GET', '/access/requests?state=pending') : Promise.resolve(null),
    ]);
    pendingBox.replaceChildren(...(pending ? [pendingSection(pending.items, caller, settle, say)] : []));
    askBox.replaceChildren(...(vas.items.length ? [askForm(vas.items, settle, say)] : []));
    // An approver who has asked for nothing and can ask for nothing is not shown an empty list of its own.
    mineBox.replaceChildren(...(mine.items.length || vas.items.length ? [mineSection(mine.items, settle)] : []));
  };
  await load();
  main.replaceChildren(h('h1', {}, 'Access requests'));
  append(main, [
    h('p', { class: 'lede' }, 'Ask for a role on a virtual account you cannot see yet; its va-admins or an admin decide. Approvers settle what waits here.'),
    notice,
    pendingBox,
    askBox,
    mineBox,
  ]);
}

function askForm(vas: Va[], settle: (said: HTMLElement) => Promise<void>, say: (said: HTMLElement) => void): HTMLElement {
  const va = h('select', { id: 'request-va', name: 'va' }, vas.map((v) => h('option', { value: v.id }, v.name)));
  const role = h('select', { id: 'request-role', name: 'role' }, (['va-viewer', 'va-admin'] as const).map((r) => h('option', { value: r }, ROLE_TEXT[r])));
  const why = h('textarea', { id: 'request-justification', name: 'justification', rows: 3, maxlength: 1000, required: true, 'aria-describedby': 'request-justification-help' });
  const submit = h('button', { type: 'submit', class: 'primary' }, icon('key'), h('span', {}, 'Request access'));
  const form = h('form', { class: 'inline-form', id: 'request-form', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: 'request-va' }, 'Virtual account'), va),
    h('p', { class: 'field' }, h('label', { for: 'request-role' }, 'Role'), role),
    h('p', { class: 'field grow' }, h('label', { for: 'request-justification' }, 'Justification'), why,
      h('span', { id: 'request-justification-help', class: 'help' }, 'Why you need it: 10 to 1000 characters, read by the approvers.')),
    h('p', { class: 'field' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const justification = why.value.trim();
    if (justification.length < 10) {
      say(status('Justification: say why you need access, in at least 10 characters.', 'error'));
      return void why.focus();
    }
    submit.disabled = true;
    const name = va.selectedOptions[0]?.textContent ?? va.value;
    void api('POST', '/access/requests', { vaId: va.value, role: role.value, justification })
      .then(() => settle(status(`Access to ${name} requested: its approvers have been asked.`)))
      .catch((err: unknown) => settle(status(`The request was not sent: ${(err as Error).message}`, 'error')))
      .finally(() => (submit.disabled = false));
  });
  return h('section', { 'aria-labelledby': 'request-title', class: 'panel' }, h('h2', { id: 'request-title' }, 'Request access'), form);
}

function pendingSection(items: AccessRequest[], caller: Caller, settle: (said: HTMLElement) => Promise<void>, say: (said: HTMLElement) => void): HTMLElement {
  const head = h('h2', { id: 'pending-title' }, 'Waiting for your decision');
  if (!items.length) return h('section', { 'aria-labelledby': 'pending-title' }, head, status('No request waits for you.'));
  const roles: Role[] = isAdmin(caller) ? ['va-viewer', 'va-admin', 'auditor', 'operator', 'admin'] : ['va-viewer', 'va-admin'];
  const act = async (busy: HTMLElement, call: () => Promise<unknown>, done: string, failed: string) => {
    busy.setAttribute('aria-busy', 'true');
    try {
      await call();
      await settle(status(done));
    } catch (e) {
      await settle(status(`${failed}: ${(e as Error).message}`, 'error'));
    }
    document.dispatchEvent(new Event(REQUESTS_CHANGED));
  };
  return h('section', { 'aria-labelledby': 'pending-title' }, head,
    h('table', { id: 'pending' },
      h('caption', { class: 'visually-hidden' }, 'Access requests waiting for a decision, oldest first'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'Asks for'),
        h('th', { scope: 'col' }, 'Justification'), h('th', { scope: 'col' }, 'Since'), h('th', { scope: 'col' }, 'Decision'),
      )),
      h('tbody', {}, items.map((r) => {
        const roleId = `grant-${r.id}`;
        const reasonId = `reason-${r.id}`;
        const grant = h('select', { id: roleId }, roles.map((x) => h('option', { value: x, selected: x === r.role }, ROLE_TEXT[x])));
        const reason = h('input', { id: reasonId, maxlength: 1000, autocomplete: 'off', placeholder: 'Reason, to deny' });
        const cell = h('td', { class: 'decision' });
        const approve = h('button', { type: 'button', class: 'primary', onclick: () => void act(cell, () => api('POST', `/access/requests/${encodeURIComponent(r.id)}/approve`, { role: grant.value }), `${r.user} now holds ${grant.value} on ${r.va}.`, 'The request was not approved') },
          icon('check'), h('span', {}, 'Approve'), h('span', { class: 'visually-hidden' }, ` ${r.user} for ${r.va}`));
        const deny = h('button', { type: 'button', class: 'danger', onclick: () => {
          if (!reason.value.trim()) {
            say(status(`Give the reason ${r.user} will read before denying.`, 'error'));
            return void reason.focus();
          }
          void act(cell, () => api('POST', `/access/requests/${encodeURIComponent(r.id)}/deny`, { reason: reason.value.trim() }), `${r.user}'s request for ${r.va} denied.`, 'The request was not denied');
        } }, icon('block'), h('span', {}, 'Deny'), h('span', { class: 'visually-hidden' }, ` ${r.user} for ${r.va}`));
        append(cell, [
          h('div', { class: 'decide-row' }, h('label', { for: roleId, class: 'visually-hidden' }, `Role to grant ${r.user} on ${r.va}`), grant, approve),
          h('div', { class: 'decide-row' }, h('label', { for: reasonId, class: 'visually-hidden' }, `Reason to deny ${r.user} on ${r.va}`), reason, deny),
        ]);
        return h('tr', { 'data-request': r.id },
          h('th', { scope: 'row' }, r.user), h('td', {}, r.va), h('td', { class: 'asked' }, r.role), h('td', { class: 'justification' }, r.justification), h('td', {}, when(r.createdAt)), cell,
        );
      })),
    ),
  );
}

function outcome(r: AccessRequest): (Node | string)[] {
  if (r.state === 'approved') return [`granted ${r.grantedRole} by ${r.decidedBy}`];
  if (r.state === 'denied') return [`denied by ${r.decidedBy}: `, h('q', { class: 'reason' }, r.reason ?? '')];
  if (r.state === 'withdrawn') return ['withdrawn by you'];
  return ['waiting for an approver'];
}

const TONE: Record<AccessRequest['state'], [string, string]> = { approved: ['ok', 'check'], denied: ['bad', 'block'], pending: ['plain', 'clock'], withdrawn: ['plain', 'block'] };

function mineSection(items: AccessRequest[], settle: (said: HTMLElement) => Promise<void>): HTMLElement {
  const head = h('h2', { id: 'mine-title' }, 'Your requests');
  if (!items.length) return h('section', { 'aria-labelledby': 'mine-title' }, head, status('You have made no access request.'));
  const withdraw = async (r: AccessRequest) => {
    try {
      await api('POST', `/access/requests/${encodeURIComponent(r.id)}/withdraw`);
      await settle(status(`Your request for ${r.va} was withdrawn.`));
    } catch (e) {
      await settle(status(`The request was not withdrawn: ${(e as Error).message}`, 'error'));
    }
  };
  return h('section', { 'aria-labelledby': 'mine-title' }, head,
    h('table', { id: 'mine' },
      h('caption', { class: 'visually-hidden' }, 'Your access requests, newest first'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Virtual account'), h('th', { scope: 'col' }, 'Asked for'), h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Outcome'), h('th', { scope: 'col' }, 'Asked'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
      )),
      h('tbody', {}, items.map((r) => {
        const [tone, mark] = TONE[r.state];
        return h('tr', { 'data-request': r.id, 'data-state': r.state },
          h('th', { scope: 'row' }, r.va), h('td', {}, r.role),
          h('td', {}, h('span', { class: `badge tone-${tone}` }, icon(mark), h('span', {}, r.state))),
          h('td', { class: 'outcome' }, ...outcome(r)),
          h('td', {}, when(r.createdAt)),
          h('td', {}, r.state === 'pending' ? h('button', { type: 'button', onclick: () => void withdraw(r) }, icon('block'), h('span', {}, 'Withdraw'), h('span', { class: 'visually-hidden' }, ` the request for ${r.va}`)) : null),
        );
      })),
    ),
  );
}

/** Told on the document when a request was settled here: the navigation's count is read again. */
export const REQUESTS_CHANGED = 'outpost:requests-changed';

/** How many requests wait for the caller to settle them (the navigation shows it beside Requests). */
export async function pendingCount(): Promise<number> {
  return (await api<{ items: AccessRequest[] }>('GET', '/access/requests?state=pending')).items.length;
}
