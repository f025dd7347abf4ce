import { z } from 'zod';
import { route } from '../http/route.js';
import { conflict, forbidden } from '../shared/errors.js';
import { ROLES, type Principal } from './roles.js';
import { SESSION_COOKIE } from './sessions.js';
import type { Services } from '../services.js';

/** A password sign-in: slowed per account and per address before the password is even checked. */
async function signIn(services: Services, name: string, password: string, remote: string): Promise<Principal> {
  const refused = services.loginThrottle.check(name.toLowerCase(), remote);
  if (refused) throw refused;
  try {
    const who = await services.users.login(name, password);
    services.loginThrottle.succeeded(name.toLowerCase());
    return who;
  } catch (e) {
    if ((e as { code?: string }).code === 'bad_credentials') services.loginThrottle.failed(name.toLowerCase(), remote);
    throw e;
  }
}

const role = z.strictObject({ role: z.enum(ROLES as [string, ...string[]]).transform((r) => r as (typeof ROLES)[number]), vaId: z.string().min(1).max(100).nullable().optional() });
const password = z.string().min(1).max(1024);
const idParam = z.strictObject({ id: z.string().min(1).max(100) });
const tokenBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  expiresInDays: z.number().int().min(1).max(3650).default(90),
  roles: z.array(role).max(50).optional(),
});

export const userRoutes = [
  route({
    method: 'get', path: '/auth/whoami', summary: 'Who the collector takes the caller for, and its roles', permission: 'self',
    handler: ({ principal }) => ({ actor: principal!.actor, kind: principal!.kind, userId: principal!.userId, roles: principal!.grants }),
  }),
  route({
    method: 'get', path: '/auth/tokens', summary: "The caller's own API tokens (never their secrets)", permission: 'self',
    handler: ({ services, principal }) => ({ items: principal!.userId ? services.users.tokens(principal!.userId) : [], nextCursor: null }),
  }),
  route({
    method: 'post', path: '/auth/tokens', summary: 'Make an API token for scripts, with the caller\'s roles or fewer; its secret is shown once', permission: 'self', status: 201,
    body: tokenBody,
    handler: ({ services, principal, body, actor }) => {
      if (!principal!.userId) throw forbidden('not_a_user', 'API tokens belong to users: make one for a user with outpost user token create --user NAME');
      return services.users.createToken(principal!.userId, body, actor);
    },
  }),
  route({
    method: 'delete', path: '/auth/tokens/:id', summary: 'Revoke one of the caller\'s API tokens', permission: 'self', params: idParam,
    handler: ({ services, principal, params, actor }) => services.users.revokeToken(params.id, principal!.userId ?? '', actor),
  }),
  route({
    method: 'post', path: '/auth/token', summary: 'Sign in with a user name and password and get an API token (its secret shown once); failures are counted and lock the account', permission: 'public', status: 201,
    body: z.strictObject({ name: z.string().min(1).max(64), password, tokenName: z.string().trim().min(1).max(100).default('signed in'), expiresInDays: z.number().int().min(1).max(90).default(1) }),
    handler: async ({ services, body, remote }) => {
      const who = await signIn(services, body.name, body.password, remote);
      return services.users.createToken(who.userId!, { name: body.tokenName, expiresInDays: body.expiresInDays }, who.actor);
    },
  }),
  route({
    method: 'post', path: '/auth/login', summary: 'Sign in from a browser: a session cookie (HttpOnly, SameSite=Strict) and the CSRF token its changes carry', permission: 'public',
    body: z.strictObject({ name: z.string().min(1).max(64), password }),
    handler: async ({ services, body, remote, secure, setHeader }) => {
      const who = await signIn(services, body.name, body.password, remote);
      const s = services.sessions.start(who.userId!, body.name, remote);
      // Secure over HTTPS; over plain HTTP (loopback only) a Secure cookie would never be sent back.
      setHeader('set-cookie', `${SESSION_COOKIE}=${s.secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${services.config.sessions.absoluteHours * 3600}${secure ? '; Secure' : ''}`);
      return { user: body.name, roles: who.grants, csrfToken: s.csrfToken, expiresAt: s.expiresAt, idleMinutes: s.idleMinutes };
    },
  }),
  route({
    method: 'get', path: '/auth/session', summary: "The browser session's user, roles and CSRF token (for a page loaded again)", permission: 'self',
    handler: ({ services, principal }) => {
      if (!principal!.session) throw conflict('not_a_session', 'this is for a browser session; scripts use API tokens');
      return { actor: principal!.actor, roles: principal!.grants, csrfToken: services.sessions.csrfOf(principal!.session.id) };
    },
  }),
  route({
    method: 'post', path: '/auth/logout', summary: 'End the browser session', permission: 'self',
    handler: ({ services, principal, actor, setHeader }) => {
      if (principal!.session) services.sessions.end(principal!.session.id, actor);
      setHeader('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return { signedOut: true };
    },
  }),
  route({
    method: 'get', path: '/users', summary: 'Users, their roles and status (never a password)', permission: 'admin',
    handler: ({ services }) => ({ items: services.users.list(), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/users', summary: 'Add a user with a password and roles', permission: 'admin', status: 201,
    body: z.strictObject({ name: z.string().min(1).max(64), password, roles: z.array(role).min(1).max(50) }),
    handler: ({ services, body, actor }) => services.users.add(body, actor),
  }),
  route({
    method: 'patch', path: '/users/:id', summary: "Change a user's roles, or disable or enable it (enabling also unlocks)", permission: 'admin', params: idParam,
    body: z.strictObject({ roles: z.array(role).min(1).max(50).optional(), status: z.enum(['active', 'disabled']).optional() }).refine((b) => b.roles || b.status, 'name roles or status'),
    handler: ({ services, params, body, actor }) => {
      if (body.roles) services.users.setRoles(params.id, body.roles, actor);
      if (!body.status) return services.users.get(params.id);
      const u = services.users.setStatus(params.id, body.status, actor);
      // An admin's unlock is meant now: the sign-in throttle, spent by the failures that locked it, is cleared too.
      if (body.status === 'active') services.loginThrottle.succeeded(u.name.toLowerCase());
      return u;
    },
  }),
  route({
    method: 'post', path: '/users/:id/password', summary: "Set a user's password", permission: 'admin', params: idParam,
    body: z.strictObject({ password }),
    handler: async ({ services, params, body, actor }) => {
      const u = await services.users.resetPassword(params.id, body.password, actor);
      services.loginThrottle.succeeded(u.name.toLowerCase());
      return u;
    },
  }),
  route({
    method: 'delete', path: '/users/:id', summary: 'Remove a user and its API tokens', permission: 'admin', params: idParam, status: 204,
    handler: ({ services, params, actor }) => services.users.remove(params.id, actor),
  }),
  route({
    method: 'get', path: '/users/:id/tokens', summary: "A user's API tokens (admins)", permission: 'admin', params: idParam,
    handler: ({ services, params }) => ({ items: services.users.tokens(services.users.get(params.id).id), nextCursor: null }),
  }),
  route({
    method: 'post', path: '/users/:id/tokens', summary: 'Make an API token for a user (admins; the first one comes this way, over the socket)', permission: 'admin', params: idParam, status: 201,
    body: tokenBody,
    handler: ({ services, params, body, actor }) => services.users.createToken(services.users.get(params.id).id, body, actor),
  }),
  route({
    method: 'delete', path: '/users/:id/tokens/:tokenId', summary: "Revoke a user's API token (admins)", permission: 'admin',
    params: z.strictObject({ id: z.string().min(1).max(100), tokenId: z.string().min(1).max(100) }),
    handler: ({ services, params, actor }) => services.users.revokeToken(params.tokenId, services.users.get(params.id).id, actor),
  }),
];
