import { resolve } from 'node:path';
import type { Command, CommandContext } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { systemClock } from '../../shared/clock.js';
import { AppError } from '../../shared/errors.js';
import type { OperationName, Operations } from '../../upstream/server/operations.js';
import { adminAnswers, adminCall, AdminError } from '../../upstream/server/admin-client.js';
import { upstreamSocketFile } from '../../upstream/server/socket-file.js';
import { untilStopped } from './serve.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';
import type { OnProgress } from '../../shared/progress.js';

/** The reference upstream runs from the command line, on its own store (upstream.dataDir or --dir). */
const upstreamDir = (ctx: CommandContext) => resolve(str(ctx.values.dir) ?? ctx.config().upstream.dataDir);

/**
 * Runs one operation: through the running upstream's socket when `outpost upstream serve`
 * answers there (it owns the store), else on the store opened here, under its lock. Either way
 * an operation that reports progress tells `onProgress`.
 */
async function op<K extends OperationName>(
  ctx: CommandContext,
  name: K,
  args: Parameters<Operations[K]>[0],
  outIsFile = false,
  onProgress?: OnProgress,
): Promise<Awaited<ReturnType<Operations[K]>>> {
  const dir = upstreamDir(ctx);
  const socket = upstreamSocketFile(dir);
  try {
    if (await adminAnswers(socket)) {
      // --out names the bundles' folder, which a serving upstream has its own of; a command whose --out is a file passes it on.
      if (str(ctx.values.out) && !outIsFile) throw new CliError(`--out is not used while the upstream serves (${socket}): its bundles go to ${dir}/outbox`);
      return await adminCall(socket, name, args, onProgress);
    }
    // The upstream's own modules load only when this command opens its store (see client.ts).
    const [{ openUpstreamStore }, { UpstreamService }, { loadOrCreateIdentity }, { StoreLockedError }, { operations }] = await Promise.all([
      import('../../upstream/store.js'), import('../../upstream/service.js'), import('../../identity/identity.js'), import('../../store/open.js'),
      import('../../upstream/server/operations.js'),
    ]);
    let db;
    try {
      db = openUpstreamStore(dir);
    } catch (e) {
      if (e instanceof StoreLockedError) throw new CliError(`${e.message}, and the upstream's socket ${socket} does not answer: is \`outpost upstream serve\` starting or stopping? Try again, or stop the other process`);
      throw e;
    }
    try {
      const { identity } = loadOrCreateIdentity(dir, 'upstream');
      const up = new UpstreamService(db, systemClock, identity, resolve(str(ctx.values.out) ?? `${dir}/outbox`), dir);
      return (await (operations(up)[name] as (a: unknown, p?: OnProgress) => Promise<unknown>)(args, onProgress)) as Awaited<ReturnType<Operations[K]>>;
    } finally {
      db.close();
    }
  } catch (e) {
    if (e instanceof AppError || e instanceof AdminError) throw new CliError(`${e.message} (${e.code})`);
    throw e;
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
      const r = await op(ctx, 'identity', {});
      // Its key and store are files the operator must back up: say where they are.
      ctx.output(r, () => `upstream ${r.upstreamId}\nfingerprint ${r.fingerprint}\nstore and key in ${r.dataDir}`);
    },
  },
  {
    name: 'upstream collector add',
    usage: 'outpost upstream collector add (REQUEST_FILE | --pending COLLECTOR_ID) --account NAME [--fingerprint FP] [--dir DIR] [--out DIR]',
    summary: "Pin a collector's key (after its fingerprint is confirmed out of band) and answer with ours",
    options: { ...dirOption, account: { type: 'string' }, fingerprint: { type: 'string' }, pending: { type: 'string' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      const pending = str(ctx.values.pending);
      const account = str(ctx.values.account);
      if (!(file || pending) || (file && pending) || !account) {
        throw new CliError('usage: outpost upstream collector add (REQUEST_FILE | --pending COLLECTOR_ID) --account NAME --fingerprint FP');
      }
      const fp = str(ctx.values.fingerprint);
      const added = await op(ctx, 'collectorAdd', { ...(pending ? { pending } : { file: resolve(file!) }), account, ...(fp ? { fingerprint: fp } : {}) });
      const r = { ...added, upstreamFingerprint: (await op(ctx, 'identity', {})).fingerprint };
      ctx.output(r, () =>
        r.pinned
          ? [
              `collector ${r.collectorId} (${r.fingerprint}) enrolled in ${account}`,
              pending ? `enrollment response: ${r.responseFile} (the collector fetches it over the connection)` : `enrollment response: ${r.responseFile}`,
              `our fingerprint, to read to the collector's operator: ${r.upstreamFingerprint}`,
            ].join('\n')
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
      const r = await op(ctx, 'collectorRotate', { file: resolve(file) });
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
      const r = await op(ctx, 'rotateKey', { graceDays: grace });
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
      const r = await op(ctx, 'entitlementAdd', {
        account, va, tag, displayName: str(v.name) ?? tag, kind, quantity,
        startsAt: time(str(v.start), '--start', Date.now())!, endsAt: time(str(v.end), '--end', null),
      });
      ctx.output(r, () => `entitlement added to ${va} (${r.vaId}); its snapshot is now version ${r.version}`);
    },
  },
  {
    name: 'upstream process',
    usage: 'outpost upstream process USAGE_BUNDLE [--force] [--dir DIR] [--out DIR] [--quiet]',
    summary: 'Verify a usage bundle, count its reports once, and write the signed response bundle',
    options: { ...dirOption, force: { type: 'boolean' }, ...quietOption },
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new CliError('name the usage bundle');
      const r = await withProgress(commandProgress(ctx, 'upstream process', 'reports'), (p) =>
        op(ctx, 'process', { file: resolve(file), force: Boolean(ctx.values.force) }, false, (e) => p.update(e)),
      );
      ctx.output(r, () =>
        r.alreadyProcessed
          ? `usage bundle ${r.sequence} (${r.usageBundle}) was already processed: nothing counted again\nresponse ${r.responseSequence}: ${r.responseFile}`
          : [
          `usage bundle ${r.sequence}: ${r.reports.accepted} reports accepted (${r.reports.new} new, ${r.reports.replaced} grown, ${r.reports.alreadyCounted} already counted), ${r.reports.rejected} rejected`,
          `response ${r.responseSequence}: ${r.responseFile}`,
        ].join('\n'),
      );
    },
  },
  {
    name: 'upstream checkpoints export',
    usage: 'outpost upstream checkpoints export --collector ID --out FILE [--dir DIR]',
    summary: "Write the signed checkpoints of a collector's audit trail received in its bundles, as JSON lines (for outpost events verify --checkpoints FILE)",
    options: { dir: { type: 'string' }, collector: { type: 'string' }, out: { type: 'string' } },
    async run(ctx) {
      const collector = str(ctx.values.collector);
      const out = str(ctx.values.out);
      if (!collector) throw new CliError('--collector ID is required (outpost upstream status lists them)');
      if (!out) throw new CliError('--out FILE is required: where the JSON lines go');
      const r = await op(ctx, 'checkpointsExport', { collector, file: resolve(out) }, true);
      ctx.output(r, () => `${r.checkpoints} checkpoint(s) of collector ${r.collectorId} written to ${r.file}`);
    },
  },
  {
    name: 'upstream collector pending',
    usage: 'outpost upstream collector pending [--dir DIR]',
    summary: 'List the enrollment requests posted over the connection, with their fingerprints',
    options: dirOption,
    async run(ctx) {
      const r = await op(ctx, 'collectorPending', {});
      ctx.output(r, () =>
        r.length
          ? [
              ...r.map((p) => `${p.collectorId}  ${p.fingerprint}  account ${p.accountName || '-'}  received ${p.receivedAt}`),
              'compare a fingerprint with the collector\'s operator, then: outpost upstream collector add --pending COLLECTOR_ID --account NAME --fingerprint FP',
            ].join('\n')
          : 'no enrollment request is waiting',
      );
    },
  },
  {
    name: 'upstream status',
    usage: 'outpost upstream status [--dir DIR]',
    summary: 'The upstream: its sync queue, its collectors and what each has sent',
    options: dirOption,
    async run(ctx) {
      const r = await op(ctx, 'status', {});
      ctx.output(r, () =>
        [
          `upstream ${r.upstreamId} (${r.fingerprint}), ${r.serving ? 'serving' : 'not serving'}`,
          `sync jobs: ${r.jobs.queued} queued, ${r.jobs.processing} processing, ${r.jobs.done} done, ${r.jobs.failed} failed`,
          `enrollment requests waiting: ${r.pendingEnrollments}`,
          `collectors: ${r.collectors.length}`,
          ...r.collectors.map((c) => `  ${c.id}  ${c.account}  usage up to ${c.usageHwm}, ${c.responses} responses  key ${c.fingerprint}`),
        ].join('\n'),
      );
    },
  },
  {
    name: 'upstream serve',
    usage: 'outpost upstream serve [--dir DIR] [--config FILE]',
    summary: 'Run the reference upstream as a service: the sync protocol over HTTP(S), its commands over a local socket',
    options: { dir: { type: 'string' } },
    async run(ctx) {
      const config = ctx.config();
      const dir = str(ctx.values.dir);
      const c = dir ? { ...config, upstream: { ...config.upstream, dataDir: resolve(dir) } } : config;
      const { startUpstream } = await import('../../upstream/server/start.js');
      const code = await untilStopped(async () => {
        const running = await startUpstream(c);
        ctx.print(`listening on ${running.url}`);
        return running;
      });
      // The store is closed: anything still running can only fail now.
      setImmediate(() => process.exit(code));
      return code;
    },
  },
];
