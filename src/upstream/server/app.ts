import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../shared/logger.js';
import { AppError } from '../../shared/errors.js';
import { verifyBundle, BundleError } from '../../exchange/read.js';
import { checkEpoch } from '../epochs.js';
import { BUNDLE_MEDIA_TYPE, HEADER, SYNC_BASE, SYNC_PROTOCOL, SYNC_VERSIONS, SignedRequestError, verifyRequest } from '../../sync/protocol.js';
import { bundleConflict, processedBundle } from '../process.js';
import type { UpstreamService } from '../service.js';
import { enrollmentKeyFor, enrollmentRequest, receiveEnrollment } from './enrollments.js';
import type { SyncJobs } from './jobs.js';
import type { Serial } from './serial.js';
import { BUSY_CODE, receiveToFile, UploadBudget } from './body.js';
import { sendError, sendFailure, sendJson } from './respond.js';

export interface SyncAppOptions {
  dataDir: string;
  maxBundleBytes: number;
  maxWaitSeconds: number;
  maxUploadingBytes: number;
  bodyTimeoutSeconds: number;
  maxPendingEnrollments: number;
}

/** An enrollment request is a manifest, a signature and nothing else: a few KiB. */
const MAX_ENROLLMENT_BYTES = 1 << 20;
const RETRY_AFTER = { 'retry-after': '1' };
const ACCEPTED_TYPES = new Set([BUNDLE_MEDIA_TYPE, 'application/octet-stream']);
const USAGE_RESPONSE = new RegExp(`^${SYNC_BASE}/usage/(bun_[0-9a-z]+)/response$`);
const ENROLLMENT = new RegExp(`^${SYNC_BASE}/enroll/((?:col|ups)_[0-9a-f-]{1,64})$`);

const location = (bundleId: string) => `${SYNC_BASE}/usage/${bundleId}/response`;

/**
 * The outpost-sync v1 routes (src/sync/protocol.ts): a collector posts its bundles, then
 * fetches the answers with signed requests. A plain node:http handler: bundles stream to disk
 * and responses stream from it, never held whole in memory.
 */
export function createSyncHandler(up: UpstreamService, jobs: SyncJobs, serial: Serial, logger: Logger, o: SyncAppOptions) {
  const incoming = join(o.dataDir, 'incoming');
  // One largest bundle always fits, whatever the setting says.
  const budget = new UploadBudget(Math.max(o.maxUploadingBytes, o.maxBundleBytes));
  const receive = (req: IncomingMessage, max: number) => receiveToFile(req, incoming, { max, budget, idleMs: o.bodyTimeoutSeconds * 1000 });

  /** The key a signed fetch of an answer may carry: the collector's current one, or a retired one within its grace. */
  const collectorKey = (collectorId: string, keyId: string): Buffer | undefined => {
    const c = up.collector(collectorId);
    if (!c) return undefined;
    if (c.key_id === keyId) return Buffer.from(c.public_key, 'base64');
    const old = up.db.prepare('SELECT public_key, grace_until FROM collector_keys WHERE key_id = ? AND collector_id = ?').get(keyId, collectorId) as
      | { public_key: string; grace_until: number }
      | undefined;
    return old && up.clock.now() <= old.grace_until ? Buffer.from(old.public_key, 'base64') : undefined;
  };

  const signed = (req: IncomingMessage, keyFor: (c: string, k: string) => Buffer | undefined) =>
    verifyRequest({ method: req.method ?? 'GET', target: req.url ?? '', headers: req.headers }, keyFor, up.clock.now());

  async function streamFile(res: ServerResponse, file: string, headers: Record<string, string>): Promise<void> {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      throw new AppError(500, 'response_unavailable', 'the answer was written but its file can no longer be read on the upstream; its operator must restore it');
    }
    res.writeHead(200, { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': String(size), ...headers });
    await pipeline(createReadStream(file), res);
  }

  async function postUsage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { file: tmp, release } = await receive(req, o.maxBundleBytes);
    let kept = false;
    try {
      const v = await verifyBundle(tmp, { kinds: ['usage'], keyFor: (m) => up.collectorKeyFor(m) });
      const m = v.manifest;
      const c = up.collector(m.collectorId)!;
      if (m.accountId !== c.account_id) throw new BundleError('wrong_account', `the bundle is bound to account ${m.accountId}; collector ${c.id} belongs to ${c.account_id}`);
      const ids = { bundleId: m.bundleId, sequence: m.sequence, location: location(m.bundleId) };
      const done = processedBundle(up.db, m.bundleId);
      if (done) {
        if (done.hash !== v.hash) throw bundleConflict(m.bundleId);
        if (done.responseFile) return sendJson(res, 200, { status: 'answered', ...ids, responseSequence: done.responseSequence });
      }
      const job = jobs.state(m.bundleId);
      if (job) {
        if (job.hash !== v.hash) throw bundleConflict(m.bundleId);
        if (job.status === 'failed' && !(await serial.run(() => jobs.retry(m.bundleId)))) return sendError(res, 422, job.errorCode ?? 'refused', job.errorMessage ?? 'processing refused this bundle');
        return sendJson(res, 202, { status: 'queued', ...ids }, { location: ids.location, ...RETRY_AFTER });
      }
      const { hwm } = checkEpoch(up, c, m);
      if (m.sequence <= hwm) {
        throw new BundleError('replay', `usage bundle sequence ${m.sequence} is at or below the last processed from this collector (${hwm}): refused as a replay`);
      }
      jobs.accept(tmp, { bundleId: m.bundleId, collectorId: c.id, sequence: m.sequence, hash: v.hash });
      kept = true;
      sendJson(res, 202, { status: 'queued', ...ids }, { location: ids.location, ...RETRY_AFTER });
    } finally {
      if (!kept) rmSync(tmp, { force: true });
      release();
    }
  }

  async function getResponse(req: IncomingMessage, res: ServerResponse, bundleId: string, query: URLSearchParams): Promise<void> {
    const who = signed(req, collectorKey);
    const rawWait = query.get('wait') ?? '0';
    if (!/^\d{1,6}$/.test(rawWait)) throw new AppError(400, 'bad_wait', `wait must be a whole number of seconds (0 to ${o.maxWaitSeconds})`);
    const deadline = Date.now() + Math.min(Number(rawWait), o.maxWaitSeconds) * 1000;
    for (;;) {
      const done = processedBundle(up.db, bundleId);
      if (done && done.collectorId === who.collectorId && done.responseFile) {
        return streamFile(res, done.responseFile, { [HEADER.responseSequence]: String(done.responseSequence) });
      }
      const job = jobs.state(bundleId);
      // Another collector's bundle is as unknown to this one as a bundle never received.
      if (!job || job.collectorId !== who.collectorId || job.status === 'done') {
        throw new AppError(404, 'unknown_bundle', `no usage bundle ${bundleId} from collector ${who.collectorId} is held here: post it again`);
      }
      // A failure of the upstream's own (processing_error) runs again when the bundle is posted again.
      if (job.status === 'failed') return sendError(res, 422, job.errorCode ?? 'refused', job.errorMessage ?? 'processing refused this bundle');
      const left = deadline - Date.now();
      if (left <= 0 || req.destroyed) {
        const position = jobs.position(bundleId);
        return sendJson(res, 202, { status: job.status, ...(position === undefined ? {} : { position }) }, RETRY_AFTER);
      }
      await jobs.waitFor(bundleId, left);
      if (Date.now() < deadline && jobs.state(bundleId)?.status === job.status && !processedBundle(up.db, bundleId)) {
        // Woken by a stop rather than the job: answer now.
        const position = jobs.position(bundleId);
        return sendJson(res, 202, { status: job.status, ...(position === undefined ? {} : { position }) }, RETRY_AFTER);
      }
    }
  }

  async function postEnroll(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { file: tmp, release } = await receive(req, Math.min(o.maxBundleBytes, MAX_ENROLLMENT_BYTES));
    try {
      const r = await serial.run(() => receiveEnrollment(up, tmp, o.dataDir, o.maxPendingEnrollments));
      const body = { ...r, location: `${SYNC_BASE}/enroll/${r.collectorId}` };
      if (r.status === 'enrolled') sendJson(res, 200, body);
      else sendJson(res, 202, body, { location: body.location, ...RETRY_AFTER });
    } finally {
      rmSync(tmp, { force: true });
      release();
    }
  }

  async function getEnrollment(req: IncomingMessage, res: ServerResponse, collectorId: string): Promise<void> {
    const who = signed(req, (c, k) => enrollmentKeyFor(up, c, k));
    const row = enrollmentRequest(up, collectorId);
    if (who.collectorId !== collectorId || !row) throw new AppError(404, 'unknown_enrollment', `no enrollment request from collector ${collectorId} is held here`);
    if (row.status === 'enrolled' && row.response_file && row.fingerprint === who.keyId) return streamFile(res, row.response_file, {});
    if (row.status === 'enrolled') throw new AppError(404, 'unknown_enrollment', `collector ${collectorId} was enrolled with another key`);
    sendJson(res, 202, { status: 'pending', collectorId, fingerprint: row.fingerprint }, RETRY_AFTER);
  }

  /** A collector's key rotation statement, signed by its old key and its new one: applied as `collector rotate` applies a file. */
  async function postRotation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { file: tmp, release } = await receive(req, Math.min(o.maxBundleBytes, MAX_ENROLLMENT_BYTES));
    try {
      sendJson(res, 200, await serial.run(() => up.acceptCollectorRotation(tmp)));
    } finally {
      rmSync(tmp, { force: true });
      release();
    }
  }

  /** The upstream's latest key rotation statement for the collector that asks, signed by the old key and the new. */
  async function getRotation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const who = signed(req, collectorKey);
    const row = up.db
      .prepare("SELECT file FROM bundles WHERE collector_id = ? AND direction = 'out' AND kind = 'key-rotation' ORDER BY sequence DESC LIMIT 1")
      .get(who.collectorId) as { file: string } | undefined;
    if (!row) throw new AppError(404, 'no_rotation', `the upstream has not rotated its key since collector ${who.collectorId} enrolled`);
    return streamFile(res, row.file, {});
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    // A target the URL parser refuses (`//`, `//[`) is a 400, never an exception out of the
    // handler: that stopped the whole upstream.
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://upstream');
    } catch {
      if (!req.complete) res.setHeader('connection', 'close');
      return sendError(res, 400, 'bad_target', 'the request target is not a path this upstream can read');
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const route = (): Promise<void> | void => {
      if (!path.startsWith(`${SYNC_BASE}/`)) return sendError(res, 404, 'not_found', `no route ${path}: the sync protocol lives under ${SYNC_BASE}`);
      const version = req.headers[HEADER.version];
      if (version !== undefined && !(SYNC_VERSIONS as readonly number[]).map(String).includes(String(version))) {
        return sendError(res, 400, 'unsupported_version', `${HEADER.version} ${String(version)} is not spoken here: this upstream accepts versions ${SYNC_VERSIONS.join(', ')}`);
      }
      const only = (m: string, fn: () => Promise<void> | void) =>
        method === m ? fn() : sendError(res, 405, 'method_not_allowed', `${path} takes ${m}`, { allow: m });
      const mediaOk = () => {
        const type = String(req.headers['content-type'] ?? BUNDLE_MEDIA_TYPE).split(';')[0]!.trim().toLowerCase();
        if (!ACCEPTED_TYPES.has(type)) throw new AppError(415, 'unsupported_media_type', `a bundle is posted as ${BUNDLE_MEDIA_TYPE} (or application/octet-stream), not ${type}`);
      };
      if (path === `${SYNC_BASE}/hello`) {
        return only('GET', () =>
          sendJson(res, 200, { protocol: SYNC_PROTOCOL, versions: [...SYNC_VERSIONS], upstreamId: up.identity.collectorId, keyId: up.identity.fingerprint, time: new Date(up.clock.now()).toISOString() }),
        );
      }
      if (path === `${SYNC_BASE}/usage`) return only('POST', () => (mediaOk(), postUsage(req, res)));
      if (path === `${SYNC_BASE}/enroll`) return only('POST', () => (mediaOk(), postEnroll(req, res)));
      if (path === `${SYNC_BASE}/rotation`) return method === 'POST' ? (mediaOk(), postRotation(req, res)) : only('GET', () => getRotation(req, res));
      const usage = USAGE_RESPONSE.exec(path);
      if (usage) return only('GET', () => getResponse(req, res, usage[1]!, url.searchParams));
      const enroll = ENROLLMENT.exec(path);
      if (enroll) return only('GET', () => getEnrollment(req, res, enroll[1]!));
      return sendError(res, 404, 'not_found', `no route ${method} ${path}`);
    };
    const fail = (e: unknown) => {
      if (e instanceof SignedRequestError) {
        return sendError(res, e.code === 'unknown_collector' ? 403 : 401, e.code, e.message);
      }
      // A refused body is cut: the client need not send the rest.
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
      if (e instanceof AppError && e.code === BUSY_CODE && !res.headersSent) res.setHeader('retry-after', '5');
      sendFailure(res, e, logger, req);
    };
    try {
      const p = route();
      if (p) p.catch(fail);
    } catch (e) {
      fail(e);
    }
  };
}
