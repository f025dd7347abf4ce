import { api, setCsrfToken, whenSignedOut } from './api.js';
import { h, icon, status } from './dom.js';
import { may, type Caller, type Grant } from './session.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { tokensPage } from './pages/tokens.js';
import { devicesPage } from './pages/devices.js';
import { licensesPage } from './pages/licenses.js';
import { eventsPage } from './pages/events.js';
import { usersPage } from './pages/users.js';

interface Page {
  path: string;
  title: string;
  icon: string;
  render: (main: HTMLElement, caller: Caller) => Promise<void>;
  /** Whether the navigation offers it (a page not offered still refuses by itself when its address is typed). */
  offered?: (caller: Caller) => boolean;
}

const PAGES: Page[] = [
  { path: 'overview', title: 'Overview', icon: 'gauge', render: overviewPage },
  { path: 'licenses', title: 'Licenses', icon: 'check', render: licensesPage },
  { path: 'devices', title: 'Devices', icon: 'device', render: devicesPage },
  { path: 'events', title: 'Events', icon: 'clock', render: eventsPage },
  { path: 'tokens', title: 'Registration tokens', icon: 'key', render: tokensPage },
  { path: 'users', title: 'Users', icon: 'user', render: usersPage, offered: (c) => may(c, 'admin') },
];

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
    h('ul', {}, PAGES.filter((p) => p.offered?.(who) ?? true).map((p) =>
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
  const path = location.hash.replace(/^#\//, '').split('/')[0] || 'overview';
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0]!;
  document.title = `${page.title} · Outpost`;
  const main = h('main', { id: 'main', tabindex: '-1' });
  const el = root();
  el.replaceChildren(h('a', { class: 'skip', href: '#main', onclick: skipToMain }, 'Skip to main content'), layout(page, caller), main);
  main.append(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  try {
    await page.render(main, caller);
  } catch (e) {
    main.replaceChildren(h('h1', {}, page.title), status(`This page could not be loaded: ${(e as Error).message}`, 'error'));
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
