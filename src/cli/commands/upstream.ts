import { resolve } from 'node:path';
import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { openUpstreamStore } from '../../upstream/store.js';
import { UpstreamService } from '../../upstream/service.js';
import { processUsageBundle } from '../../upstream/process.js';
import { loadOrCreateIdentity } from '../../identity/identity.js';
import { systemClock } from '../../shared/clock.js';
import { AppError } from '../../shared/errors.js';

/** The reference upstream runs from the command line, on its own store (upstream.dataDir or --dir). */
const upstreamDir = (ctx: CommandContext) => resolve(str(ctx.values.dir) ?? ctx.config().upstream.dataDir);

async function withUpstream<T>(ctx: CommandContext, fn: (up: UpstreamService) => Promise<T>): Promise<T> {
  const dir = upstreamDir(ctx);
  const db = openUpstreamStore(dir);
  try {
    const { identity } = loadOrCreateIdentity(dir, 'upstream');
    return await fn(new UpstreamService(db, systemClock, identity, resolve(str(ctx.values.out) ?? `${dir}/outbox`), dir));
  } catch (e) {
    if (e instanceof AppError) throw new CliError(`${e.message} (${e.code})`);
    throw e;
  } finally {
    db.close();
  }
}

const dirOption = { dir: { type: 'string' }, out: { type: 'string' } } as const;
const KINDS = ['perpetual', 'subscription', 'term', 'unlimited'] as const;

function time(v: string | undefined, what: string, fallback: number | null): number | null {
  if (v === undefined) return fallback;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new CliError(`${what} must be a date (YYYY-MM-DD or ISO 8601)`);
  return ms;
}

export const upstreamCommands: Command[] = [
  {
    name: 'upstream init',
    usage: 'outpost upstream init [--dir DIR]',
    summary: 'Create the reference upstream: its store and its key pair',
    options: dirOption,
    async run(ctx) {
      const dataDir = upstreamDir(ctx);
      const r = await withUpstream(ctx, async (up) => ({ upstreamId: up.identity.collectorId, fingerprint: up.identity.fingerprint, publicKey: up.identity.publicKeyB64, dataDir }));
      // Its key and store are files the operator must back up: say where they are.
      ctx.output(r, () => `upstream ${r.upstreamId}\nfingerprint ${r.fingerprint}\nstore and key in ${r.dataDir}`);
    },
  },
  {
    name: 'upstream collector add',
    usage: 'outpost upstream collector add REQUEST_FILE --account NAME [--fingerprint FP] [--dir DIR] [--out DIR]',
    summary: "Pin a collector's key (after its fingerprint is confirmed out of band) and answer with ours",
    options: { ...dirOption, account: { type: 'string' }, fingerprint: { type: 'string' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      const account = str(ctx.values.account);
      if (!file || !account) throw new CliError('usage: outpost upstream collector add REQUEST_FILE --account NAME --fingerprint FP');
      const r = await withUpstream(ctx, (up) => up.addCollector(resolve(file), { account, fingerprint: str(ctx.values.fingerprint) }).then((x) => ({ ...x, upstreamFingerprint: up.identity.fingerprint })));
      ctx.output(r, () =>
        r.pinned
          ? [`collector ${r.collectorId} (${r.fingerprint}) enrolled in ${account}`, `enrollment response: ${r.responseFile}`, `our fingerprint, to read to the collector's operator: ${r.upstreamFingerprint}`].join('\n')
          : `the collector's key has fingerprint ${r.fingerprint}. Compare it with the collector's operator, then run again with --fingerprint ${r.fingerprint}`,
      );
      if (!r.pinned) throw new CliError('not pinned: no --fingerprint given', 3);
    },
  },
  {
    name: 'upstream collector rotate',
    usage: 'outpost upstream collector rotate STATEMENT_FILE [--dir DIR]',
    summary: "Apply a collector's key rotation statement (signed by its old and new keys)",
    options: dirOption,
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the rotation statement');
      const r = await withUpstream(ctx, (up) => up.acceptCollectorRotation(resolve(file)));
      ctx.output(r, () => `collector ${r.collectorId}: ${r.status === 'applied' ? 'key rotated' : 'rotation already applied'} ${r.from} -> ${r.to}, from sequence ${r.fromSequence}`);
    },
  },
  {
    name: 'upstream rotate-key',
    usage: 'outpost upstream rotate-key [--grace-days 30] [--dir DIR] [--out DIR]',
    summary: "Rotate the upstream's key; writes one statement per collector, to carry with the next response",
    options: { ...dirOption, 'grace-days': { type: 'string' } },
    async run(ctx) {
      const grace = Number(str(ctx.values['grace-days']) ?? ctx.config().exchange.keyGraceDays);
      if (!Number.isInteger(grace) || grace < 0 || grace > 365) throw new CliError('--grace-days must be 0 to 365');
      const r = await withUpstream(ctx, (up) => up.rotateOwnKey(grace));
      ctx.output(r, () => [`upstream key rotated: ${r.from} -> ${r.to}`, ...r.statements.map((f) => `  statement: ${f}`)].join('\n'));
    },
  },
  {
    name: 'upstream entitlements add',
    usage: 'outpost upstream entitlements add --account NAME --va VA --tag TAG --name NAME --quantity N [--kind subscription] [--start DATE] [--end DATE] [--dir DIR]',
    summary: 'Record a purchase: an entitlement line for an account and virtual account',
    options: {
      ...dirOption, account: { type: 'string' }, va: { type: 'string' }, tag: { type: 'string' }, name: { type: 'string' },
      quantity: { type: 'string' }, kind: { type: 'string' }, start: { type: 'string' }, end: { type: 'string' },
    },
    async run(ctx) {
      const v = ctx.values;
      const [account, va, tag] = [str(v.account), str(v.va), str(v.tag)];
      if (!account || !va || !tag) throw new CliError('--account, --va and --tag are required');
      const quantity = Number(str(v.quantity) ?? 'x');
      if (!Number.isInteger(quantity) || quantity < 0) throw new CliError('--quantity must be a whole number');
      const kind = (str(v.kind) ?? 'subscription') as (typeof KINDS)[number];
      if (!KINDS.includes(kind)) throw new CliError(`--kind must be one of ${KINDS.join(', ')}`);
      const r = await withUpstream(ctx, async (up) =>
        up.addEntitlement({
          account, va, tag, displayName: str(v.name) ?? tag, kind, quantity,
          startsAt: time(str(v.start), '--start', Date.now())!, endsAt: time(str(v.end), '--end', null),
        }),
      );
      ctx.output(r, () => `entitlement added to ${va} (${r.vaId}); its snapshot is now version ${r.version}`);
    },
  },
  {
    name: 'upstream process',
    usage: 'outpost upstream process USAGE_BUNDLE [--force] [--dir DIR] [--out DIR]',
    summary: 'Verify a usage bundle, count its reports once, and write the signed response bundle',
    options: { ...dirOption, force: { type: 'boolean' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the usage bundle');
      const r = await withUpstream(ctx, (up) => processUsageBundle(up, resolve(file), { force: Boolean(ctx.values.force) }));
      ctx.output(r, () =>
        [
          `usage bundle ${r.sequence}: ${r.reports.accepted} reports accepted (${r.reports.new} new, ${r.reports.replaced} grown, ${r.reports.alreadyCounted} already counted), ${r.reports.rejected} rejected`,
          `response ${r.responseSequence}: ${r.responseFile}`,
        ].join('\n'),
      );
    },
  },
];
