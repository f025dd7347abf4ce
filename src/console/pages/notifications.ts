import { actThenSay } from '../act.js';
import { api, ApiError } from '../api.js';
import { append, h, icon, status } from '../dom.js';
import { may, type Caller } from '../session.js';
import { checkbox, severityTicks, vaNames, vaTicks, type Severity, type Va } from './notifications-fields.js';
import { sinksSection } from './notifications-sinks.js';

interface Subscription {
  userId: string;
  email: string;
  filter: { severities: Severity[]; vaIds: string[] | null };
  resolutions: boolean;
  digest: boolean;
}

/**
 * Notifications: everyone's own e-mail subscription; for admins, the channels' status and the
 * syslog and webhook sinks. Every action reads the data again before it says how it went.
 */
export async function notificationsPage(main: HTMLElement, caller: Caller): Promise<void> {
  // The VAs the caller may read: a subscription names no other.
  const vas = (await api<{ items: Va[] }>('GET', '/virtual-accounts')).items;
  const notice = h('div', { id: 'subscription-notice', tabindex: '-1' });
  const body = h('div', { id: 'subscription', 'data-answer': '0' });
  let answers = 0;

  const reload = async () => {
    let sub: Subscription | null = null;
    try {
      sub = await api<Subscription>('GET', '/notifications/subscriptions');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    body.replaceChildren(subscriptionView(sub, vas, { save, end }));
    body.dataset.answer = String(++answers);
  };
  const act = async (change: () => Promise<string>, failed: string): Promise<void> =>
    void (await actThenSay({ where: notice, change: async () => status(await change()), failed, reload, unread: 'Your subscription could not be read again' }));
  const save = (b: Omit<Subscription, 'userId' | 'filter'> & Subscription['filter']) =>
    act(async () => (await api('POST', '/notifications/subscriptions', b), `Your subscription is saved: alerts go to ${b.email}.`), 'Your subscription was not saved');
  const end = () => act(async () => (await api('DELETE', '/notifications/subscriptions'), 'Your subscription has ended: no more e-mail is sent to you.'), 'Your subscription was not ended');

  await reload();
  main.replaceChildren();
  append(main, [
    h('h1', {}, 'Notifications'),
    h('p', { class: 'lede' }, 'Alerts reach people where they look: by e-mail to each user who subscribes, and to the syslog and webhook sinks an admin sets up.'),
    h('section', { 'aria-labelledby': 'subscription-title', class: 'panel' },
      h('h2', { id: 'subscription-title' }, icon('bell'), h('span', {}, 'Your e-mail subscription')),
      notice, body),
    may(caller, 'admin') ? await sinksSection(vas) : null,
  ]);
}

interface SubscriptionActions {
  save(b: { email: string; severities: Severity[]; vaIds: string[] | null; resolutions: boolean; digest: boolean }): Promise<void>;
  end(): Promise<void>;
}

function subscriptionView(sub: Subscription | null, vas: Va[], a: SubscriptionActions): HTMLElement {
  const email = h('input', { id: 'subscription-email', name: 'email', type: 'email', required: true, maxlength: 254, autocomplete: 'email', value: sub?.email ?? '' });
  const sev = severityTicks('subscription-severities', sub?.filter.severities ?? ['warning', 'critical']);
  const va = vaTicks('subscription-vas', vas, sub?.filter.vaIds ?? null, 'None ticked: every virtual account you may read.');
  const resolutions = checkbox('subscription-resolutions', 'Also when an alert resolves', sub?.resolutions ?? false);
  const digest = checkbox('subscription-digest', 'A daily digest of the day\'s alerts', sub?.digest ?? false);
  const form = h('form', { id: 'subscription-form', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: email.id }, 'E-mail address'), email),
    h('div', { class: 'filter-row' }, sev.fieldset, va.fieldset),
    resolutions.field, digest.field,
    h('p', { class: 'buttons' },
      h('button', { type: 'submit', class: 'primary' }, icon('check'), h('span', {}, sub ? 'Save subscription' : 'Subscribe')),
      sub ? h('button', { type: 'button', id: 'subscription-end', class: 'danger', onclick: () => void a.end() }, icon('block'), h('span', {}, 'End subscription')) : null),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const vaIds = va.checked();
    void a.save({ email: email.value.trim(), severities: sev.checked() as Severity[], vaIds: vaIds.length ? vaIds : null, resolutions: resolutions.input.checked, digest: digest.input.checked });
  });
  const summary = sub
    ? h('p', { id: 'subscription-summary' }, `Alerts of severity ${sub.filter.severities.join(', ')} about ${vaNames(vas, sub.filter.vaIds, 'every virtual account you may read')} go to ${sub.email}` +
      `${sub.resolutions ? ', resolutions too' : ''}${sub.digest ? ', with a daily digest' : ''}.`)
    : h('p', { id: 'subscription-summary' }, 'You have no subscription: no alert is sent to you by e-mail.');
  return h('div', {}, summary, form);
}
