import { api, setCsrfToken, whenSignedOut } from './api.js';
import { h, icon, status } from './dom.js';
import { may, type Caller, type Grant } from './session.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { tokensPage } from './pages/tokens.js';
import { devicesPage } from './pages/devices.js';
import { licensesPage } from './pages/licenses.js';
import { exchangePage } from './pages/exchange.js';
import { devicePage } from './pages/device.js';
import { eventsPage } from './pages/events.js';
import { usersPage } from './pages/users.js';
import { accessPage } from './pages/access.js';
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

const PAGES: Page[] = [
  { path: 'overview', title: 'Overview', icon: 'gauge', render: overviewPage },
  { path: 'licenses', title: 'Licenses', icon: 'check', render: licensesPage },
  { path: 'devices', title: 'Devices', icon: 'device', render: devicesPage },
  { path: 'events', title: 'Events', icon: 'clock', render: eventsPage },
  { path: 'tokens', title: 'Registration tokens', icon: 'key', render: tokensPage },
  { path: 'exchange', title: 'Exchange', icon: 'exchange', render: exchangePage, offered: (c) => may(c, 'read'), refusal: 'The exchange is collector-wide: only a role on every virtual account may see it, and yours are on some of them.' },
  { path: 'access', title: 'Requests', icon: 'user', render: accessPage },
  { path: 'notifications', title: 'Notifications', icon: 'bell', render: notificationsPage },
  { path: 'users', title: 'Users', icon: 'user', render: usersPage, offered: (c) => may(c, 'admin'), refusal: 'Only an admin may see and change users, and your roles do not include admin.' },
];

const offeredTo = (c: Caller) => PAGES.filter((p) => !p.offered || p.offered(c));

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
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/overview');
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
      h('li', {}, h('a', { href: `#/${p.path}`, 'aria-current': p === current ? 'page' : null }, icon(p.icon), h('span', {}, p.title))),
    )),
  );
  const roles = who.grants.map((g) => (g.vaId ? `${g.role} (one VA)` : g.role)).join(', ');
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/overview' }, icon('outpost'), h('span', {}, 'Outpost')),
    nav,
    h('div', { class: 'who' },
      h('span', { class: 'who-name' }, icon('user'), h('span', {}, name), h('span', { class: 'who-roles' }, ` · ${roles}`)),
      who.kind === 'session' ? h('button', { type: 'button', class: 'quiet', id: 'sign-out', onclick: () => void signOut() }, icon('logout'), h('span', {}, 'Sign out')) : null,
    ),
  );
  return header;
}

async function route(): Promise<void> {
  if (!caller) return;
  const [path = '', sub] = location.hash.replace(/^#\//, '').split('/');
  const page = PAGES.find((p) => p.path === (path || 'overview')) ?? PAGES[0]!;
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
void start();
