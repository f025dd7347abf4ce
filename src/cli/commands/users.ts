import { secretInput } from '../secret-input.js';
import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { ApiToken, User } from '../../users/service.js';
import type { Grant } from '../../users/roles.js';

const roleList = (roles: Grant[]) => roles.map((g) => (g.vaId ? `${g.role}@${g.vaId}` : g.role)).join(', ');

/** --role admin, or --role va-viewer --va Campus (one VA for the VA roles). */
function roles(ctx: CommandContext): { role: string; vaId?: string }[] | undefined {
  const given = ctx.values.role as unknown as string[] | undefined;
  if (!given?.length) return undefined;
  const va = str(ctx.values.va);
  return given.map((role) => (role.startsWith('va-') ? { role, ...(va ? { vaId: va } : {}) } : { role }));
}

/** Reads a line from the terminal without echoing it. */
function hidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    // Echo off before the prompt shows: what is typed (or pasted) the moment it appears is never echoed.
    stdin.setRawMode(true);
    process.stderr.write(prompt);
    stdin.resume();
    let typed = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * The password: prompted on a terminal (twice, not echoed), else from a file only its owner
 * reads, or OUTPOST_USER_PASSWORD (unattended installs); never from the command line.
 */
async function askPassword(ctx: CommandContext): Promise<string> {
  if (str(ctx.values['password-file']) || process.env.OUTPOST_USER_PASSWORD || !process.stdin.isTTY) return password(ctx);
  const first = await hidden('password: ');
  if ((await hidden('again: ')) !== first) throw new CliError('the two passwords differ: nothing was changed');
  return first;
}

function password(ctx: CommandContext): string {
  const given = secretInput(str(ctx.values['password-file']), 'password file', 'OUTPOST_USER_PASSWORD');
  if (given) return given;
  throw new CliError('give the password at the prompt (on a terminal), with --password-file FILE (mode 0600) or in OUTPOST_USER_PASSWORD; never on the command line');
}

const renderUser = (u: User) => `${u.name} (${u.id}): ${roleList(u.roles)}; ${u.status}${u.locked ? ', locked' : ''}`;

export const userCommands: Command[] = [
  {
    name: 'user add',
    usage: 'outpost user add NAME --role ROLE [--role ROLE] [--va VA] [--password-file FILE | OUTPOST_USER_PASSWORD] (else prompted)',
    summary: 'Add a user (roles: admin, operator, auditor, va-admin and va-viewer with --va)',
    options: { role: { type: 'string', multiple: true }, va: { type: 'string' }, 'password-file': { type: 'string' } },
    fields: { name: 'NAME', roles: '--role' },
    async run(ctx) {
      const name = ctx.positionals[0];
      if (!name) throw new CliError('name the user');
      const r = roles(ctx);
      if (!r) throw new CliError('give at least one --role: admin, operator, auditor, va-admin or va-viewer (with --va VA)');
      const pw = await askPassword(ctx);
      const u = (await ctx.api((api) => api('POST', '/users', { name, password: pw, roles: r }))) as User;
      ctx.output(u, () => `added ${renderUser(u)}`);
    },
  },
  {
    name: 'user list',
    usage: 'outpost user list',
    summary: 'Users, their roles and status',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/users'))) as { items: User[] };
      ctx.output(r.items, () =>
        r.items.length ? table(r.items, [['name', (u) => u.name], ['roles', (u) => roleList(u.roles)], ['status', (u) => u.status + (u.locked ? ' (locked)' : '')], ['since', (u) => shortTime(u.createdAt)]]) : 'no users: the collector is run from its host alone (loopback and the local socket)',
      );
    },
  },
  ...(['disable', 'enable'] as const).map(
    (verb): Command => ({
      name: `user ${verb}`,
      usage: `outpost user ${verb} NAME`,
      summary: verb === 'disable' ? 'Disable a user: no sign-in, no API token of theirs works' : 'Enable a user again (and unlock a locked account)',
      async run(ctx) {
        const name = ctx.positionals[0];
        if (!name) throw new CliError('name the user');
        const u = (await ctx.api((api) => api('PATCH', `/users/${encodeURIComponent(name)}`, { status: verb === 'disable' ? 'disabled' : 'active' }))) as User;
        ctx.output(u, () => renderUser(u));
      },
    }),
  ),
  {
    name: 'user roles',
    usage: 'outpost user roles NAME --role ROLE [--role ROLE] [--va VA]',
    summary: "Replace a user's roles",
    options: { role: { type: 'string', multiple: true }, va: { type: 'string' } },
    async run(ctx) {
      const name = ctx.positionals[0];
      const r = roles(ctx);
      if (!name || !r) throw new CliError('name the user and give its roles with --role');
      const u = (await ctx.api((api) => api('PATCH', `/users/${encodeURIComponent(name)}`, { roles: r }))) as User;
      ctx.output(u, () => renderUser(u));
    },
  },
  {
    name: 'user reset',
    usage: 'outpost user reset NAME [--password-file FILE | OUTPOST_USER_PASSWORD] (else prompted)',
    summary: "Set a user's password (and unlock the account)",
    options: { 'password-file': { type: 'string' } },
    async run(ctx) {
      const name = ctx.positionals[0];
      if (!name) throw new CliError('name the user');
      const pw = await askPassword(ctx);
      const u = (await ctx.api((api) => api('POST', `/users/${encodeURIComponent(name)}/password`, { password: pw }))) as User;
      ctx.output(u, () => `password set for ${u.name}`);
    },
  },
  {
    name: 'user remove',
    usage: 'outpost user remove NAME',
    summary: 'Remove a user and its API tokens',
    async run(ctx) {
      const name = ctx.positionals[0];
      if (!name) throw new CliError('name the user');
      await ctx.api((api) => api('DELETE', `/users/${encodeURIComponent(name)}`));
      ctx.output({ removed: name }, () => `removed ${name}`);
    },
  },
  {
    name: 'user token create',
    usage: 'outpost user token create --user NAME --name TEXT [--days N] [--role ROLE --va VA]',
    summary: "Make an API token for a user's scripts (its secret is shown once)",
    options: { user: { type: 'string' }, name: { type: 'string' }, days: { type: 'string' }, role: { type: 'string', multiple: true }, va: { type: 'string' } },
    async run(ctx) {
      const user = str(ctx.values.user);
      const name = str(ctx.values.name);
      if (!user || !name) throw new CliError('give --user NAME and --name (what the token is for)');
      const days = Number(str(ctx.values.days) ?? 90);
      const r = roles(ctx);
      const t = (await ctx.api((api) => api('POST', `/users/${encodeURIComponent(user)}/tokens`, { name, expiresInDays: days, ...(r ? { roles: r } : {}) }))) as ApiToken & { secret: string };
      ctx.output(t, () => `API token ${t.id} for ${user} (${roleList(t.roles)}), until ${t.expiresAt}:\n${t.secret}\nIt is shown this once: send it as "Authorization: Bearer <token>".`);
    },
  },
  {
    name: 'user token list',
    usage: 'outpost user token list --user NAME',
    summary: "A user's API tokens (never their secrets)",
    options: { user: { type: 'string' } },
    async run(ctx) {
      const user = str(ctx.values.user);
      if (!user) throw new CliError('give --user NAME');
      const r = (await ctx.api((api) => api('GET', `/users/${encodeURIComponent(user)}/tokens`))) as { items: ApiToken[] };
      ctx.output(r.items, () =>
        table(r.items, [['id', (t) => t.id], ['name', (t) => t.name], ['roles', (t) => roleList(t.roles)], ['expires', (t) => shortTime(t.expiresAt)], ['revoked', (t) => shortTime(t.revokedAt)], ['last used', (t) => shortTime(t.lastUsedAt)]]),
      );
    },
  },
  {
    name: 'user token revoke',
    usage: 'outpost user token revoke --user NAME TOKEN_ID',
    summary: "Revoke a user's API token",
    options: { user: { type: 'string' } },
    async run(ctx) {
      const user = str(ctx.values.user);
      const id = ctx.positionals[0];
      if (!user || !id) throw new CliError('give --user NAME and the token id');
      const t = (await ctx.api((api) => api('DELETE', `/users/${encodeURIComponent(user)}/tokens/${encodeURIComponent(id)}`))) as ApiToken;
      ctx.output(t, () => `revoked ${t.id}`);
    },
  },
];
