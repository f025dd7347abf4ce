import { existsSync, readFileSync } from 'node:fs';
import { assertReadableFile } from '../../shared/files.js';
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { table } from '../format.js';
import { readManifest, verifyBundle, BundleError } from '../../exchange/read.js';
import { createPublicKey } from 'node:crypto';
import { decodePublicKey, fingerprint } from '../../shared/ed25519.js';
import type { ExportResult, ExportPreview } from '../../exchange/export.js';
import type { ImportResult } from '../../exchange/import.js';
import { bundleKinds } from '../../exchange/manifest.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';

const fileArg = (p: string | undefined, what: string) => {
  if (!p) throw new CliError(`name the ${what}`);
  return resolve(p);
};

/** A public key from a PEM file, or a base64 raw key (in a file or given as is). */
function loadKey(spec: string): Buffer {
  let text = spec;
  if (existsSync(spec)) {
    assertReadableFile(resolve(spec), 'key file');
    text = readFileSync(spec, 'utf8');
  }
  const raw = decodePublicKey(text.trim());
  if (raw) return raw;
  if (text === spec && /[/\\]|\.pem$/i.test(spec)) throw new CliError(`--key: there is no key file ${resolve(spec)} (file_not_found)`);
  try {
    const der = createPublicKey(text).export({ format: 'der', type: 'spki' });
    if (der.length !== 44) throw new Error('not ed25519');
    return Buffer.from(der.subarray(12)); // SPKI for ed25519 is a 12-byte prefix and the raw key
  } catch {
    throw new CliError('--key must be an ed25519 public key: a PEM file, or 32 bytes in base64');
  }
}

export const exchangeCommands: Command[] = [
  {
    name: 'export',
    usage: 'outpost export [--period YYYY-MM] [--dry-run] [--quiet]',
    summary: 'Write the usage bundle (every report not yet acknowledged) into sync-bundles/outbox',
    options: { period: { type: 'string' }, 'dry-run': { type: 'boolean' }, ...quietOption },
    async run(ctx) {
      const dryRun = Boolean(ctx.values['dry-run']);
      const period = str(ctx.values.period);
      const r = (await withProgress(commandProgress(ctx, 'export', 'reports'), (p) =>
        ctx.api((api) => api('POST', '/exchange/export', { period, dryRun }, { onProgress: (e) => p.update(e) })),
      )) as ExportResult & ExportPreview;
      ctx.output(r, () =>
        [
          dryRun ? `dry run for ${r.period}: nothing written` : `usage bundle ${r.sequence} for ${r.period}: ${r.file} (${r.bytes} bytes)`,
          `  ${r.reports} reports not yet acknowledged, ${r.devices} devices, ${r.virtualAccounts} virtual accounts (${r.proposals} proposed), ${r.usageSummary} usage lines`,
          ...(dryRun ? [] : [`  manifest SHA-256 ${r.hash}`, 'Review it (tar, zcat, jq), then carry it to the upstream.']),
        ].join('\n'),
      );
    },
  },
  {
    name: 'import',
    usage: 'outpost import FILE [--force] [--quiet]',
    summary: "Verify and apply a response bundle from the upstream (ACKs, entitlements, policy)",
    options: { force: { type: 'boolean' }, ...quietOption },
    async run(ctx) {
      const file = fileArg(ctx.positionals[0], 'response bundle');
      const r = (await withProgress(commandProgress(ctx, 'import', 'ACK lines'), (p) =>
        ctx.api((api) => api('POST', '/exchange/import', { file, force: Boolean(ctx.values.force) }, { onProgress: (e) => p.update(e) })),
      )) as ImportResult;
      ctx.output(r, () =>
        r.status === 'already_imported'
          ? `response ${r.bundleId} was imported before: nothing to do`
          : [
              `response ${r.sequence} (answers ${r.answers})${r.forced ? ', forced' : ''}: applied`,
              `  ACKs: ${r.acks.accepted} accepted, ${r.acks.rejected} rejected, ${r.acks.stale} already settled`,
              `  entitlement snapshots: ${r.entitlements.applied} applied, ${r.entitlements.skippedOlder} older ones skipped; policy: ${r.policy}`,
              `  virtual accounts: ${r.virtualAccounts.confirmed} confirmed, ${r.virtualAccounts.refused} refused`,
              ...(r.transfers && r.transfers.confirmed + r.transfers.refused ? [`  license transfers: ${r.transfers.confirmed} confirmed, ${r.transfers.refused} refused (reverted; see outpost alerts)`] : []),
            ].join('\n'),
      );
    },
  },
  {
    name: 'bundle inspect',
    usage: 'outpost bundle inspect FILE',
    summary: "Show a bundle's manifest and payload counts (trusting nothing)",
    async run(ctx) {
      const file = fileArg(ctx.positionals[0], 'bundle');
      const { manifest: m, hash } = await readManifest(file).catch((e: unknown) => {
        throw e instanceof BundleError ? new CliError(`${e.message} (${e.code})`) : e;
      });
      ctx.output({ manifest: m, manifestSha256: hash }, () =>
        [
          `${m.kind} bundle ${m.bundleId}, sequence ${m.sequence}${m.period ? `, period ${m.period}` : ''}`,
          `  collector ${m.collectorId}, account ${m.accountId}, created ${m.createdAt}`,
          `  signed by ${m.signer.keyId} (${m.signer.algorithm}); manifest SHA-256 ${hash}`,
          ...(m.answers ? [`  answers usage bundle ${m.answers.bundleId} (sequence ${m.answers.sequence})`] : []),
          table(m.payloads, [['payload', (p) => p.name], ['records', (p) => p.records], ['bytes', (p) => p.size], ['sha256', (p) => p.sha256]]),
          'Not verified: use outpost bundle verify.',
        ].join('\n'),
      );
    },
  },
  {
    name: 'bundle verify',
    usage: 'outpost bundle verify FILE [--key PEM_OR_BASE64]',
    summary: 'Check a bundle\'s signature and every payload hash, applying nothing',
    options: { key: { type: 'string' } },
    async run(ctx) {
      const file = fileArg(ctx.positionals[0], 'bundle');
      let keys: Buffer[];
      const keySpec = str(ctx.values.key);
      if (keySpec) keys = [loadKey(keySpec)];
      else {
        const k = (await ctx.api((api) => api('GET', '/exchange/keys'))) as { collector: { publicKey: string }; upstream: { publicKey: string }[] };
        keys = [k.collector.publicKey, ...k.upstream.map((u) => u.publicKey)].map((b) => Buffer.from(b, 'base64'));
      }
      try {
        const v = await verifyBundle(file, {
          kinds: bundleKinds,
          keyFor: (m) => {
            const k = keys.find((x) => fingerprint(x) === m.keyId);
            if (!k) throw new BundleError('unknown_signer', `the bundle is signed by ${m.keyId}, which is not a key given or pinned here`);
            return k;
          },
        });
        ctx.output({ valid: true, manifest: v.manifest, manifestSha256: v.hash }, () =>
          `valid: ${v.manifest.kind} bundle ${v.manifest.bundleId} signed by ${v.manifest.signer.keyId}; ${v.manifest.payloads.length} payload(s), every hash matches`,
        );
      } catch (e) {
        if (e instanceof BundleError) throw new CliError(`INVALID: ${e.message} (${e.code})`);
        throw e;
      }
    },
  },
  {
    name: 'keys',
    usage: 'outpost keys [--pem] [--upstream]',
    summary: "This collector's public key (or the pinned upstream's, with --upstream), with fingerprints; --pem for openssl",
    options: { pem: { type: 'boolean' }, upstream: { type: 'boolean' } },
    async run(ctx) {
      const k = (await ctx.api((api) => api('GET', '/exchange/keys'))) as {
        collector: { id: string; keyId: string; publicKey: string; pem: string };
        upstream: { keyId: string; publicKey: string; pem: string; status: string }[];
      };
      const list = ctx.values.upstream ? k.upstream.filter((u) => u.status === 'active') : [k.collector];
      if (ctx.values.pem && !ctx.json) {
        if (!list.length) throw new CliError('no upstream key is pinned');
        return ctx.print(list.map((x) => x.pem.trimEnd()).join('\n'));
      }
      ctx.output(k, () =>
        [`collector ${k.collector.id}: ${k.collector.keyId}`, ...k.upstream.map((u) => `upstream key ${u.keyId} (${u.status})`)].join('\n'),
      );
    },
  },
  {
    name: 'keys rotate',
    usage: 'outpost keys rotate [--grace-days 30]',
    summary: "Rotate this collector's key; the statement (signed by both keys) goes to the outbox for the upstream",
    options: { 'grace-days': { type: 'string' } },
    async run(ctx) {
      const g = str(ctx.values['grace-days']);
      const r = (await ctx.api((api) => api('POST', '/exchange/rotate-key', g === undefined ? {} : { graceDays: Number(g) }))) as {
        file: string; oldKeyId: string; newKeyId: string; fromSequence: number;
      };
      ctx.output(r, () =>
        [`key rotated: ${r.oldKeyId} -> ${r.newKeyId}, signing from sequence ${r.fromSequence}`, `statement for the upstream: ${r.file}`,
          'Devices verify ACKs with the collector key: they fetch the new one from /device/v1/collector.'].join('\n'),
      );
    },
  },
  {
    name: 'enroll',
    usage: 'outpost enroll --account NAME',
    summary: 'Write an enrollment request for the upstream, and print this collector\'s fingerprint',
    options: { account: { type: 'string' } },
    async run(ctx) {
      const accountName = str(ctx.values.account);
      if (!accountName) throw new CliError('--account names the account at the upstream');
      const r = (await ctx.api((api) => api('POST', '/exchange/enroll', { accountName }))) as { file: string; fingerprint: string; collectorId: string };
      ctx.output(r, () =>
        [`enrollment request: ${r.file}`, `collector ${r.collectorId}`, `fingerprint ${r.fingerprint}`, 'Give the upstream operator this fingerprint by another channel (phone, in person).'].join('\n'),
      );
    },
  },
  {
    name: 'enroll confirm',
    usage: 'outpost enroll confirm RESPONSE_FILE [--fingerprint FP]',
    summary: "Pin the upstream's key from its enrollment response, after comparing its fingerprint out of band",
    options: { fingerprint: { type: 'string' } },
    async run(ctx) {
      const file = fileArg(ctx.positionals[0], 'enrollment response');
      const r = (await ctx.api((api) => api('POST', '/exchange/trust', { file, fingerprint: str(ctx.values.fingerprint) }))) as {
        fingerprint: string; accountId: string; pinned: boolean;
      };
      ctx.output(r, () =>
        r.pinned
          ? `upstream key ${r.fingerprint} pinned; account ${r.accountId}`
          : `the upstream key's fingerprint is ${r.fingerprint}. Compare it with the upstream operator, then run again with --fingerprint ${r.fingerprint}`,
      );
      if (!r.pinned) throw new CliError('not pinned: no --fingerprint given', 3);
    },
  },
];
