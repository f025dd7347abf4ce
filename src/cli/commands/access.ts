import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { shortTime, table } from '../format.js';
import type { AccessRequest } from '../../access/service.js';

const STATES = ['pending', 'approved', 'denied', 'withdrawn'];

const outcome = (r: AccessRequest) =>
  r.state === 'approved' ? `approved as ${r.grantedRole} by ${r.decidedBy}` : r.state === 'denied' ? `denied by ${r.decidedBy}: ${r.reason}` : r.state;

/** Approve or deny: the request named, its one required option, posted to the request's action. */
async function decide(ctx: CommandContext, action: 'approve' | 'deny', option: 'role' | 'reason', missing: string): Promise<AccessRequest> {
  const id = ctx.positionals[0];
  const value = str(ctx.values[option]);
  if (!id) throw new CliError('name the request (its id, from outpost access requests)');
  if (!value?.trim()) throw new CliError(missing);
  return (await ctx.api((api) => api('POST', `/access/requests/${encodeURIComponent(id)}/${action}`, { [option]: value }))) as AccessRequest;
}

export const accessCommands: Command[] = [
  {
    name: 'access requests',
    usage: 'outpost access requests [--state pending|approved|denied|withdrawn]',
    summary: 'Access requests to virtual accounts (all of them over the local socket), oldest first',
    options: { state: { type: 'string' } },
    async run(ctx) {
      const state = str(ctx.values.state);
      if (state !== undefined && !STATES.includes(state)) throw new CliError(`--state is one of ${STATES.join(', ')}`);
      const r = (await ctx.api((api) => api('GET', `/access/requests${state ? `?state=${state}` : ''}`))) as { items: AccessRequest[] };
      ctx.output(r.items, () =>
        r.items.length
          ? table(r.items, [
              ['id', (x) => x.id], ['user', (x) => x.user], ['va', (x) => x.va], ['asks', (x) => x.role], ['since', (x) => shortTime(x.createdAt)],
              ['justification', (x) => x.justification], ['outcome', outcome],
            ])
          : (state ? `no ${state} access request` : 'no access request'),
      );
    },
  },
  {
    name: 'access approve',
    usage: 'outpost access approve REQUEST_ID --role va-viewer|va-admin|auditor|operator|admin',
    summary: 'Approve an access request, granting the role given (it may differ from the one asked)',
    options: { role: { type: 'string' } },
    fields: { id: 'REQUEST_ID' },
    async run(ctx) {
      const r = await decide(ctx, 'approve', 'role', 'give the role to grant with --role (va-viewer, va-admin, or a role on every VA)');
      ctx.output(r, () => `approved: ${r.user} is now ${r.grantedRole}${r.grantedRole?.startsWith('va-') ? ` on ${r.va}` : ''}`);
    },
  },
  {
    name: 'access deny',
    usage: 'outpost access deny REQUEST_ID --reason TEXT',
    summary: 'Deny an access request, with the reason its requester reads',
    options: { reason: { type: 'string' } },
    fields: { id: 'REQUEST_ID' },
    async run(ctx) {
      const r = await decide(ctx, 'deny', 'reason', 'give the reason with --reason: the requester reads it');
      ctx.output(r, () => `denied ${r.user}'s request for ${r.va}`);
    },
  },
];
