import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { route } from '../http/route.js';
import { toIso } from '../shared/clock.js';
import { publicKeyPem } from '../shared/ed25519.js';
import { createReadStream, fstatSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import { AppError, notFound } from '../shared/errors.js';
import { Download } from '../http/download.js';
import type { UploadedFile } from '../http/upload.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import { BundleError } from './read.js';
import type { BundleRow } from './state.js';
import type { Services } from '../services.js';

const absoluteFile = z.string().min(1).max(4096).refine(isAbsolute, 'an absolute path on the collector host');

export const exchangeRoutes = [
  route({
    method: 'post', path: '/exchange/export', summary: 'Write the usage bundle into the outbox (or preview it with dryRun)', permission: 'operate', progress: true,
    body: z.strictObject({ period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month as YYYY-MM, e.g. 2026-11').optional(), dryRun: z.boolean().default(false) }),
    handler: ({ services, body, actor, progress }) =>
      body.dryRun ? { dryRun: true, ...services.exchange.exporter.preview(body.period) } : services.exchange.exporter.export({ period: body.period, actor, onProgress: progress }),
  }),
  route({
    method: 'post', path: '/exchange/import', summary: 'Verify and apply a response bundle from the upstream', permission: 'operate', progress: true,
    body: z.strictObject({ file: absoluteFile, force: z.boolean().default(false) }),
    handler: ({ services, body, actor, progress }) => services.exchange.importer.import(body.file, { force: body.force, actor, onProgress: progress }),
  }),
  route({
    method: 'post', path: '/exchange/upload',
    summary: 'Upload a response bundle\'s bytes (application/octet-stream, at most exchange.maxResponseBytes) and import it as /exchange/import does',
    permission: 'operate', bodyType: 'bytes',
    upload: (services) => ({
      limit: services.config.exchange.maxResponseBytes, setting: 'exchange.maxResponseBytes', dir: services.config.exchange.bundleDir,
      // The name the archived copy keeps: when it came, since the browser's file name is not trusted.
      name: () => `uploaded-${new Date().toISOString().replace(/[-:.]/g, '')}${BUNDLE_EXTENSION}`,
    }),
    handler: async ({ services, body, actor }) => {
      const { file } = body as UploadedFile;
      try {
        return await services.exchange.importer.import(file, { force: false, actor });
      } catch (e) {
        // A bundle refused for what it is (not an import already under way, which it is not to blame for).
        if (!(e instanceof BundleError)) throw e;
        // As the inbox does with a file it refuses: the bytes are kept in rejected/ with the reason,
        // and the refusal is on the audit trail (who tried, what, why); nothing else changes.
        const kept = services.exchange.importer.archive(file, 'rejected', `${e.code}: ${e.message}`);
        services.events.append('exchange.rejected', actor, basename(kept), null, { code: e.code, reason: e.message, movedTo: kept, via: 'upload' });
        throw new AppError(e.status, e.code, e.message, { ...e.details, keptAs: kept });
      }
    },
  }),
  route({
    method: 'get', path: '/exchange/bundles/:id/download', summary: 'Download a bundle file the collector wrote or applied', permission: 'operate',
    params: z.strictObject({ id: z.string().min(1).max(100) }), contentType: 'application/octet-stream',
    handler: ({ services, params }) => {
      const b = services.exchange.state.bundle(params.id);
      if (!b) throw notFound('bundle', params.id);
      // Opened before the answer starts: a file moved away since is a 404 that says where it was, not a broken download.
      let fd: number;
      try {
        fd = openSync(b.file, 'r');
      } catch {
        throw new AppError(404, 'bundle_file_missing', `bundle ${b.id} was written to ${b.file}, which is no longer there`, { file: b.file });
      }
      return new Download(basename(b.file), createReadStream(b.file, { fd }), fstatSync(fd).size);
    },
  }),
  route({
    method: 'get', path: '/exchange/bundles', summary: 'Bundles written and applied, newest first, with what each carried and its outcome', permission: 'read',
    handler: ({ services }) => ({
      items: services.exchange.state.bundles(100).map((b) => ({
        id: b.id, direction: b.direction, kind: b.kind, sequence: b.sequence, hash: b.hash, file: b.file, period: b.period,
        records: b.records, createdAt: toIso(b.created_at), answers: b.answers, forced: b.forced === 1,
        outcome: bundleOutcome(services, b),
      })),
      highWaterMarks: { response: services.exchange.state.responseHwm, answeredUsage: services.exchange.state.answeredHwm },
      nextCursor: null,
    }),
  }),
  route({
    method: 'get', path: '/exchange/keys', summary: "This collector's key and the pinned upstream keys", permission: 'read',
    handler: ({ services }) => ({
      collector: {
        id: services.identity.collectorId, keyId: services.identity.fingerprint, publicKey: services.identity.publicKeyB64,
        pem: publicKeyPem(services.identity.publicKey),
      },
      upstream: services.exchange.state.upstreamKeys().map((k) => ({
        keyId: k.key_id, publicKey: k.public_key, pem: publicKeyPem(Buffer.from(k.public_key, 'base64')), status: k.status, addedAt: toIso(k.added_at), retiredAt: toIso(k.retired_at), graceUntil: toIso(k.grace_until),
      })),
      accountId: services.exchange.state.upstreamAccountId,
    }),
  }),
  route({
    method: 'post', path: '/exchange/rotate-key', summary: "Rotate this collector's key; writes the statement for the upstream", permission: 'admin',
    body: z.strictObject({ graceDays: z.number().int().min(0).max(365).optional() }),
    handler: ({ services, body, actor }) => services.exchange.rotation.rotate(body.graceDays ?? services.config.exchange.keyGraceDays, actor),
  }),
  route({
    method: 'post', path: '/exchange/enroll', summary: 'Write an enrollment request for the upstream', permission: 'admin',
    body: z.strictObject({ accountName: z.string().min(1).max(100) }),
    handler: ({ services, body, actor }) => services.exchange.enrollment.request(body.accountName, actor),
  }),
  route({
    method: 'post', path: '/exchange/trust', summary: "Pin the upstream's key from its enrollment response, once its fingerprint is confirmed", permission: 'admin',
    body: z.strictObject({ file: absoluteFile, fingerprint: z.string().max(100).optional() }),
    handler: ({ services, body, actor }) => services.exchange.enrollment.trust(body.file, body.fingerprint, actor),
  }),
];

/**
 * What became of a bundle: a usage bundle is answered once a response naming it was applied
 * (or waits for one); a bundle from the upstream was applied (forced past a check, or not).
 */
function bundleOutcome(services: Services, b: BundleRow): { status: string; by: string | null } {
  if (b.direction === 'in') return { status: b.forced === 1 ? 'applied_forced' : 'applied', by: null };
  if (b.kind !== 'usage') return { status: 'written', by: null };
  const answer = services.exchange.state.answeredBy(b.id);
  return answer ? { status: 'answered', by: answer } : { status: 'waiting_for_answer', by: null };
}
