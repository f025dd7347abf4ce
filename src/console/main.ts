import { api, setCsrfToken, whenSignedOut } from './api.js';
import { h, icon, status } from './dom.js';
import { may, mayAnywhere, type Caller, type Grant } from './session.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { tokensPage } from './pages/tokens.js';
import { devicesPage } from './pages/devices.js';
import { licensesPage } from './pages/licenses.js';
import { exchangePage } from './pages/exchange.js';
import { devicePage } from './pages/device.js';
import { eventsPage } from './pages/events.js';
import { usersPage } from './pages/users.js';
import { accessPage, approves, pendingCount, REQUESTS_CHANGED } from './pages/access.js';
import { transfersOffered, transfersPage } from './pages/transfers.js';
import { notificationsPage } from './pages/notifications.js';

interface Page {
  path: string;
  title: string;
  icon: string;
  render: (main: HTMLElement, caller: Caller) => Promise<void>;
  /** Offered only to a caller who may read what the page shows (absent: everyone signed in). */
  offered?: (caller: Caller) => boolean;
  /** Said when the page's address is typed by a caller it is not offered to (no data is asked for). */
  refusal?: string;
}

/** The pages that show a VA's data: for a caller with a role on at least one VA; a user with none has Requests alone. */
const readsSomeVa = { offered: (c: Caller) => mayAnywhere(c, 'read'), refusal: 'You hold no role on any virtual account yet: ask for one on the Requests page.' };

const PAGES: Page[] = [
  { path: 'overview', title: 'Overview', icon: 'gauge', render: overviewPage, ...readsSomeVa },
  { path: 'licenses', title: 'Licenses', icon: 'check', render: licensesPage, ...readsSomeVa },
  { path: 'devices', title: 'Devices', icon: 'device', render: devicesPage, ...readsSomeVa },
  { path: 'events', title: 'Events', icon: 'clock', render: eventsPage, ...readsSomeVa },
  { path: 'transfers', title: 'Transfers', icon: 'exchange', render: transfersPage, offered: transfersOffered, refusal: 'Transfers are offered to roles that may read licenses, and yours may read none.' },
  { path: 'tokens', title: 'Registration tokens', icon: 'key', render: tokensPage, ...readsSomeVa },
  { path: 'exchange', title: 'Exchange', icon: 'exchange', render: exchangePage, offered: (c) => may(c, 'read'), refusal: 'The exchange is collector-wide: only a role on every virtual account may see it, and yours are on some of them.' },
  { path: 'access', title: 'Requests', icon: 'user', render: accessPage },
  { path: 'notifications', title: 'Notifications', icon: 'bell', render: notificationsPage },
  { path: 'users', title: 'Users', icon: 'user', render: usersPage, offered: (c) => may(c, 'admin'), refusal: 'Only an admin may see and change users, and your roles do not include admin.' },
];

const offeredTo = (c: Caller) => PAGES.filter((p) => !p.offered || p.offered(c));
/** Where a caller lands: the first page it is offered (Requests, for a user with no role yet). */
const landing = (c: Caller) => (offeredTo(c)[0] ?? PAGES[0]!).path;

const root = () => document.getElementById('app')!;
let caller: Caller | null = null;

/** Who the page was loaded by (the collector says so in the page), then who-am-I for the roles. */
async function start(): Promise<void> {
  const kind = document.documentElement.dataset.principal ?? 'none';
  whenSignedOut((why) => {
    caller = null;
    setCsrfToken(null);
    showLogin(why);
  });
  if (kind === 'none') return showLogin();
  try {
    await signedIn(kind);
  } catch (e) {
    showLogin((e as Error).message);
  }
}

async function signedIn(kind: string, csrf?: string): Promise<void> {
  // A page loaded again in a session gets its CSRF token back from the session route.
  const token = kind === 'session' ? (csrf ?? (await api<{ csrfToken: string }>('GET', '/auth/session')).csrfToken) : null;
  setCsrfToken(token);
  const who = await api<{ actor: string; kind: string; roles: Grant[] }>('GET', '/auth/whoami');
  caller = { actor: who.actor, kind: who.kind, grants: who.roles, csrfToken: token };
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', `#/${landing(caller)}`);
  await route();
}

function showLogin(why?: string): void {
  document.title = 'Sign in · Outpost';
  const el = root();
  el.replaceChildren();
  loginPage(el, why, async (csrf) => {
    await signedIn('session', csrf);
  });
}

async function signOut(): Promise<void> {
  try {
    await api('POST', '/auth/logout');
  } finally {
    caller = null;
    setCsrfToken(null);
    history.replaceState(null, '', location.pathname);
    showLogin('You have signed out.');
  }
}

function layout(current: Page, who: Caller): HTMLElement {
  const name = who.actor.replace(/^user:/, '').replace(/ \(session .*\)$/, '');
  const nav = h('nav', { 'aria-label': 'Main' },
    h('ul', {}, offeredTo(who).map((p) =>
      h('li', {}, h('a', { href: `#/${p.path}`, 'aria-current': p === current ? 'page' : null }, icon(p.icon), h('span', {}, p.title), p.path === 'access' ? waitingBadge(who) : null)),
    )),
  );
  const roles = who.grants.map((g) => (g.vaId ? `${g.role} (one VA)` : g.role)).join(', ') || 'no role yet';
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: `#/${landing(who)}` }, icon('outpost'), h('span', {}, 'Outpost')),
    nav,
    h('div', { class: 'who' },
      h('span', { class: 'who-name' }, icon('user'), h('span', {}, name), h('span', { class: 'who-roles' }, ` · ${roles}`)),
      who.kind === 'session' ? h('button', { type: 'button', class: 'quiet', id: 'sign-out', onclick: () => void signOut() }, icon('logout'), h('span', {}, 'Sign out')) : null,
    ),
  );
  return header;
}

/**
 * The number of requests the caller may settle, beside Requests: read with each page drawn, for
 * approvers only (nobody else settles any). Filled in when it answers; a failure leaves it out.
 */
function waitingBadge(who: Caller): HTMLElement | null {
  if (!approves(who)) return null;
  const slot = h('span', { id: 'requests-waiting' });
  fillWaiting(slot);
  return slot;
}

function fillWaiting(slot: HTMLElement): void {
  void pendingCount().then(
    (n) => {
      slot.dataset.count = String(n);
      slot.replaceChildren(...(n > 0 ? [h('span', { class: 'badge tone-plain' }, String(n), h('span', { class: 'visually-hidden' }, n === 1 ? ' request waits for you' : ' requests wait for you'))] : []));
    },
    () => undefined,
  );
}

async function route(): Promise<void> {
  if (!caller) return;
  const [path = '', sub] = location.hash.replace(/^#\//, '').split('/');
  // An address of no page opens the landing page, as no address does.
  const page = PAGES.find((p) => p.path === path) ?? PAGES.find((p) => p.path === landing(caller!))!;
  // A page not offered to this caller, reached by its address: the refusal is said, and no data asked for.
  const refused = page.offered !== undefined && !page.offered(caller);
  // A device's page (#/devices/<id>) sits under Devices, which the navigation keeps as current.
  const deviceId = page.path === 'devices' && sub ? decodeURIComponent(sub) : null;
  const render = refused
    ? async (m: HTMLElement) => void m.replaceChildren(h('h1', {}, page.title), status(page.refusal ?? 'Your roles do not give you this page.', 'error'))
    : deviceId === null ? page.render : (m: HTMLElement, c: Caller) => devicePage(m, c, deviceId);
  document.title = `${deviceId === null ? page.title : 'Device'} · Outpost`;
  const main = h('main', { id: 'main', tabindex: '-1' });
  const el = root();
  el.replaceChildren(h('a', { class: 'skip', href: '#main', onclick: skipToMain }, 'Skip to main content'), layout(page, caller), main);
  main.append(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  try {
    await render(main, caller);
  } catch (e) {
    main.replaceChildren(h('h1', {}, deviceId === null ? page.title : 'Device'), status(`This page could not be loaded: ${(e as Error).message}`, 'error'));
  }
  main.dataset.ready = 'true';
  // After a navigation, reading starts at the page's heading, not at the top of the header.
  if (document.activeElement === document.body || document.activeElement?.closest('nav')) main.querySelector('h1')?.setAttribute('tabindex', '-1');
  if (document.activeElement?.closest('nav')) (main.querySelector('h1') as HTMLElement | null)?.focus();
}

/** The skip link moves focus, not only the scroll position (the hash is the page's route). */
function skipToMain(e: Event): void {
  e.preventDefault();
  document.getElementById('main')?.focus();
}

window.addEventListener('hashchange', () => void route());
// A request settled on the Requests page changes the count at once, not at the next page drawn.
document.addEventListener(REQUESTS_CHANGED, () => {
  const slot = document.getElementById('requests-waiting');
  if (slot) fillWaiting(slot);
});
void start();
