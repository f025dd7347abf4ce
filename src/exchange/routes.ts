import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { route } from '../http/route.js';
import { toIso } from '../shared/clock.js';
import { publicKeyPem } from '../shared/ed25519.js';

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
    method: 'get', path: '/exchange/bundles', summary: 'Bundles written and applied, newest first', permission: 'read',
    handler: ({ services }) => ({
      items: services.exchange.state.bundles(100).map((b) => ({
        id: b.id, direction: b.direction, kind: b.kind, sequence: b.sequence, hash: b.hash, file: b.file, period: b.period,
        records: b.records, createdAt: toIso(b.created_at), answers: b.answers, forced: b.forced === 1,
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
