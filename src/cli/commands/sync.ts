import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import type { SyncService, SyncResult } from '../../sync/service.js';
import type { CloudSync, CloudSyncResult } from '../../cssm/cloud-sync.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';
import { DESTINATION_NAMES, type DestinationStanding } from '../../usage/destinations.js';

type Status = ReturnType<SyncService['status']> & { destinations: DestinationStanding[] };
type CloudStatus = ReturnType<CloudSync['status']> & { destinations: DestinationStanding[] };
const isCloud = (s: Status | CloudStatus): s is CloudStatus => typeof s.upstream === 'object' && s.upstream !== null && s.upstream.kind === 'cisco';

function renderCloudStatus(s: CloudStatus): string {
  const lines = [
    `mode:          ${s.mode} (Cisco's cloud at ${s.upstream.url}${s.upstream.domain ? `, smart account ${s.upstream.domain}` : ', no smart account set'})`,
    `credentials:   ${s.credentialsSetAt ? `set ${s.credentialsSetAt}` : 'not set (outpost cisco cloud credentials)'}`,
    `last attempt:  ${ago(s.lastAttemptAt)}`,
    `last success:  ${ago(s.lastSuccessAt)}`,
  ];
  if (s.lastError) lines.push(`last error:    at step ${s.lastError.step}: ${s.lastError.message} (${s.lastError.code}, ${s.lastError.at})`);
  if (s.nextRunAt) lines.push(`next run:      ${s.nextRunAt}`);
  if (s.running) lines.push(`running:       ${s.step ?? 'starting'}`);
  lines.push(`waiting for Cisco's ACK: ${s.waiting.reports} reports${s.waiting.oldestSince ? `, the oldest since ${s.waiting.oldestSince}` : ''}`);
  lines.push(`uploads:       ${s.uploads.polling.uploads} being processed by Cisco (${s.uploads.polling.reports} reports), ${s.uploads.complete.uploads} answered, ${s.uploads.failed.uploads} failed`);
  if (s.alreadyUploaded) lines.push(`already uploaded: ${s.alreadyUploaded} reports Cisco held already (covered by their device's next ACK)`);
  for (const d of s.destinations ?? []) {
    if (d.destination === 'cssm') continue;
    lines.push(`waiting for the ${DESTINATION_NAMES[d.destination]}'s ACK: ${d.waiting} reports${d.oldestWaitingSince ? `, the oldest since ${d.oldestWaitingSince}` : ''}`);
  }
  return lines.join('\n');
}

function renderCloudResult(r: CloudSyncResult): string {
  if (r.status === 'failed') return `sync with Cisco's cloud failed at step ${r.error?.step}: ${r.error?.message} (${r.error?.code})`;
  const u = r.usage!;
  const p = r.positions!;
  const lines = [
    `synced with Cisco's cloud: ${u.uploads} upload(s) of ${u.reportsUploaded} reports, ${u.completed} answered (${u.acknowledged} reports acknowledged), ${u.alreadyUploaded} already uploaded, ${u.stillPolling} still being processed`,
    `positions: ${p.positions} licenses of ${p.virtualAccounts} virtual account(s)${p.untagged ? `, ${p.untagged} with no tag (cisco.cloud.licenseTags)` : ''}`,
  ];
  for (const f of u.failed) lines.push(`failed: ${f.device}: ${f.message}`);
  for (const m of u.unmapped) lines.push(`not sent: ${m.reports} reports of VA ${m.va}: ${m.problem}`);
  return lines.join('\n');
}

const ago = (iso: string | null) => (iso ? `${iso}` : 'never');

function renderStatus(s: Status): string {
  const lines = [
    `mode:          ${s.mode}${s.upstream ? ` (upstream ${s.upstream}, sync protocol v${s.protocolVersion})` : ' (no upstream configured)'}`,
    `last attempt:  ${ago(s.lastAttemptAt)}`,
    `last success:  ${ago(s.lastSuccessAt)}`,
  ];
  if (s.lastError) lines.push(`last error:    ${s.lastError.message} (${s.lastError.code}, ${s.lastError.at})`);
  if (s.unreachableSince) lines.push(`unreachable since ${s.unreachableSince}`);
  if (s.nextRunAt) lines.push(`next run:      ${s.nextRunAt}`);
  if (s.running && s.progress) lines.push(`running:       part ${s.progress.part}, ${s.progress.step}; ${s.progress.reportsSent} of ${s.progress.reportsAtStart} reports sent`);
  if (s.inFlight) lines.push(`in flight:     usage bundle ${s.inFlight.sequence} (${s.inFlight.reports} reports), posted ${s.inFlight.postedAt ?? 'not yet'}`);
  if (s.waiting) lines.push(`waiting for an ACK: ${'estimated' in s.waiting ? 'about ' : ''}${s.waiting.reports} reports${s.waiting.oldestSince ? `, the oldest since ${s.waiting.oldestSince}` : ''}`);
  for (const d of s.destinations ?? []) {
    if (d.destination === 'outpost') continue;
    lines.push(`waiting for the ${DESTINATION_NAMES[d.destination]}'s ACK: ${d.waiting} reports${d.oldestWaitingSince ? `, the oldest since ${d.oldestWaitingSince}` : ''}`);
  }
  return lines.join('\n');
}

function renderResult(r: SyncResult): string {
  if (r.status === 'failed') return `sync failed after ${r.parts} part(s): ${r.error?.message} (${r.error?.code})`;
  return `synced: ${r.parts} part(s), ${r.reports.sent} reports sent, ${r.reports.accepted} acknowledged, ${r.reports.rejected} rejected`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const syncCommands: Command[] = [
  {
    name: 'sync now',
    usage: 'outpost sync now [--quiet]',
    summary: 'Sync with the upstream now: send what is not acknowledged, in parts, and apply the answers',
    // --no-progress: the older name of --quiet, kept for the scripts that use it.
    options: { 'no-progress': { type: 'boolean' }, ...quietOption },
    async run(ctx) {
      const quiet = Boolean(ctx.values.quiet || ctx.values['no-progress']);
      const result = await withProgress(commandProgress({ values: { quiet } }, 'sync', 'reports'), (bar) =>
        ctx.api(async (api) => {
          const started = (await api('POST', '/exchange/sync', {})) as { started: boolean };
          if (!started.started && !quiet) process.stderr.write('a sync is already running: following it\n');
          // The sync runs as the collector's own job (a timer starts it too): its status says how far it is.
          for (;;) {
            const s = (await api('GET', '/exchange/status')) as Status | CloudStatus;
            if (!s.running) return s.lastRun;
            if (!isCloud(s) && s.progress) {
              bar.update({ phase: `part ${s.progress.part} ${s.progress.step}`, done: s.progress.reportsSent, total: Math.max(s.progress.reportsAtStart, s.progress.reportsSent) });
            } else if (isCloud(s)) bar.update({ phase: s.step ?? 'starting', done: 0, total: null, unit: 'steps' });
            await sleep(250);
          }
        }),
      );
      if (!result) throw new CliError('the sync ended without a result: see `outpost sync status`');
      ctx.output(result, () => ('usage' in result ? renderCloudResult(result) : renderResult(result)));
      if (result.status === 'failed') return 1;
    },
  },
  {
    name: 'sync status',
    usage: 'outpost sync status',
    summary: 'Mode, last attempt and success, last error, next run, reports waiting for an ACK',
    async run(ctx) {
      const s = (await ctx.api((api) => api('GET', '/exchange/status'))) as Status | CloudStatus;
      ctx.output(s, () => (isCloud(s) ? renderCloudStatus(s) : renderStatus(s)));
    },
  },
  {
    name: 'sync enroll',
    usage: 'outpost sync enroll --account NAME',
    summary: 'Send an enrollment request to the upstream over the connection, and print our fingerprint to read to its operator',
    options: { account: { type: 'string' } },
    fields: { accountName: '--account' },
    async run(ctx) {
      const account = str(ctx.values.account);
      if (!account) throw new CliError('--account is required: the upstream account this collector belongs to');
      const r = (await ctx.api((api) => api('POST', '/exchange/sync/enroll', { accountName: account }))) as { status: string; collectorId: string; fingerprint: string; upstream: string };
      ctx.output(r, () =>
        [
          `enrollment request sent to ${r.upstream}: ${r.status}`,
          `collector ${r.collectorId}`,
          `our fingerprint, to read to the upstream's operator: ${r.fingerprint}`,
          'Once they have confirmed it, run `outpost sync enroll confirm --fingerprint <theirs>` with the fingerprint they read to you.',
        ].join('\n'),
      );
    },
  },
  {
    name: 'sync enroll confirm',
    usage: 'outpost sync enroll confirm [--fingerprint FP]',
    summary: "Fetch the upstream's enrollment response over the connection; pin its key once the fingerprint matches",
    options: { fingerprint: { type: 'string' } },
    async run(ctx) {
      const fp = str(ctx.values.fingerprint);
      const r = (await ctx.api((api) => api('POST', '/exchange/sync/trust', fp ? { fingerprint: fp } : {}))) as { status: string; fingerprint?: string; message?: string; accountId?: string };
      ctx.output(r, () =>
        r.status === 'pending'
          ? `not yet: ${r.message}`
          : r.status === 'pinned'
            ? `upstream key ${r.fingerprint} pinned (account ${r.accountId})`
            : `the upstream key has fingerprint ${r.fingerprint}. Compare it with the upstream's operator, then run again with --fingerprint ${r.fingerprint}`,
      );
      if (r.status === 'pending') return 3;
      if (r.status === 'confirm') return 3;
    },
  },
];
