import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { AppError, badRequest, unauthorized, toErrorBody } from '../shared/errors.js';
import { parseOrThrow } from '../shared/validation.js';
import { sha256hex } from '../shared/hash.js';
import { decodePublicKey, signWith } from '../shared/ed25519.js';
import type { Clock } from '../shared/clock.js';
import type { Identity } from '../identity/identity.js';
import type { DeviceService } from '../devices/service.js';
import type { AccountService } from '../accounts/service.js';
import type { PolicyService } from '../policy/service.js';
import type { RefusalCounter } from '../events/refusals.js';
import type { IngestService } from '../usage/ingest.js';
import type { AckReader } from '../usage/acks.js';
import { parseBatch, parseReport } from '../usage/report-schema.js';
import type { Logger } from '../shared/logger.js';
import { canonicalString, HEADER, LEGACY_REPLY_SIGNATURE_UNTIL, REGISTRATION_DEVICE_ID, rekeyProofString, replyString } from './signing.js';
import type { SignatureVerifier } from './verifier.js';
import type { BodyBudget } from '../http/limits.js';
import { tooManyRequests, type DeviceRateLimits } from '../http/rate-limit.js';
import type { DeviceAuth } from '../devices/repository.js';
import { deviceApiRoutes, deviceRouteKey } from './routes.js';
import { withRequest } from '../shared/request-context.js';

export interface DeviceApiDeps {
  identity: Identity;
  clock: Clock; // the system clock: freshness is about what the device and we agree "now" is
  devices: DeviceService;
  accounts: AccountService;
  policy: PolicyService;
  ingest: IngestService;
  acks: AckReader;
  refusals: RefusalCounter;
  logger: Logger;
  limits: { maxBodyBytes: number; signatureWindowSeconds: number; maxReportsPerBatch: number; maxMeasurementsPerReport: number };
  verifier: SignatureVerifier;
  /** Request-body bytes held across all connections (http.maxBufferedBytes). */
  budget: BodyBudget;
  rate: DeviceRateLimits;
}

const publicKeyField = z.string().refine((s) => decodePublicKey(s) !== null, 'a base64 raw 32-byte ed25519 public key');
const registrationSchema = z.strictObject({
  token: z.string().min(1).max(200),
  udi: z.strictObject({ pid: z.string().min(1).max(64), serial: z.string().min(1).max(64) }),
  hostname: z.string().max(255).default(''),
  softwareVersion: z.string().max(128).default(''),
  publicKey: publicKeyField,
});
const rekeySchema = z.strictObject({
  publicKey: publicKeyField,
  /** The same canonical request string, signed with the new key: proof the device holds it. */
  proof: z.string().min(1).max(200),
});

interface Head {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  address: string;
}

interface Req extends Head {
  body: Buffer;
  /** The device the headers named, found before the body was read (routes a device signs). */
  device?: DeviceAuth | undefined;
}

const TABLE = new Map(deviceApiRoutes.map((r) => [deviceRouteKey(r.method, r.path), r]));

/**
 * The device-facing API on plain node:http rather than express: the device path is the hot
 * one (thousands of signed requests a second), and express's router and body parsing cost
 * about three quarters of the throughput on a small POST. Operators go through express.
 */
export function createDeviceHandler(deps: DeviceApiDeps) {
  const windowMs = deps.limits.signatureWindowSeconds * 1000;
  const collectorId = deps.identity.collectorId;

  function refuse(reason: string, req: Head, err: AppError): never {
    // A sample of what was refused, bounded: the attacker chooses these bytes.
    deps.refusals.count(reason, { path: req.url.slice(0, 120), device: String(req.headers[HEADER.device] ?? '').slice(0, 80) });
    throw err;
  }

  /** The signature headers are there and the timestamp is fresh: checked before the body is read. */
  function checkTimestamp(req: Head): void {
    const ts = String(req.headers[HEADER.timestamp] ?? '');
    const sig = String(req.headers[HEADER.signature] ?? '');
    if (!/^\d{1,12}$/.test(ts) || !sig) {
      refuse('signature_missing', req, unauthorized('signature_missing', `headers ${HEADER.timestamp} (unix seconds) and ${HEADER.signature} are required`));
    }
    const skew = Math.abs(deps.clock.now() - Number(ts) * 1000);
    if (skew > windowMs) {
      refuse('timestamp_stale', req, unauthorized('timestamp_stale', `the request timestamp is ${Math.round(skew / 1000)} s from the collector's clock; the window is ${windowMs / 1000} s`));
    }
  }

  /** The device the headers name, registered and keyed: checked before the body is read. */
  function knownDevice(req: Head): DeviceAuth & { public_key: string } {
    const deviceId = String(req.headers[HEADER.device] ?? '');
    if (!deviceId) refuse('signature_missing', req, unauthorized('device_missing', `header ${HEADER.device} is required`));
    const device = deps.devices.repo.forAuth(deviceId);
    if (!device || device.status === 'deregistered' || !device.public_key) {
      refuse('unknown_device', req, unauthorized('unknown_device', `device ${deviceId} is not registered`));
    }
    checkTimestamp(req);
    return device as DeviceAuth & { public_key: string };
  }

  /**
   * What the headers alone allow, decided before a byte of the body is buffered: a request
   * from an unknown device, with a stale timestamp, to no route, or declaring a body over the
   * limit is answered at once. Returns the device for the routes a device signs.
   */
  function admit(req: Head): DeviceAuth | undefined {
    const wait = deps.rate.address.take(req.address);
    if (wait) refuse('rate_limited_address', req, tooManyRequests('address', 'rate.addressPerMinute', wait));
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > deps.limits.maxBodyBytes) throw new AppError(413, 'body_too_large', `the body exceeds ${deps.limits.maxBodyBytes} bytes`);
    const path = req.url.split('?')[0]!;
    const r = TABLE.get(deviceRouteKey(req.method, path));
    if (!r) throw new AppError(404, 'not_found', `no device route ${req.method} ${path}`);
    if (r.auth === 'device') return knownDevice(req);
    if (r.auth === 'registration') checkTimestamp(req);
    return undefined;
  }

  /** `cache` false for a registration: its key is whatever the sender chose, and must not evict devices' keys. */
  async function checkSignature(req: Req, deviceId: string, publicKeyB64: string, cache = true): Promise<void> {
    const ts = String(req.headers[HEADER.timestamp]);
    const sig = String(req.headers[HEADER.signature]);
    const ok = await deps.verifier.verify(publicKeyB64, sig, canonicalString({ method: req.method, path: req.url, collectorId, deviceId, timestamp: ts, body: req.body }), cache);
    if (!ok) refuse('bad_signature', req, unauthorized('bad_signature', 'the request signature does not verify'));
  }

  /** A signed request from the registered device admit() found: returns its row. */
  async function authenticate(req: Req) {
    const device = req.device!;
    try {
      await checkSignature(req, device.id, device.public_key!);
    } catch (e) {
      if (e instanceof AppError && e.code === 'bad_signature') await refuseIfRekeyPending(req, device.id);
      throw e;
    }
    // Counted once the signature verifies: a forged request naming a device cannot spend its allowance.
    const wait = deps.rate.device.take(device.id);
    if (wait) refuse('rate_limited_device', req, tooManyRequests('device', 'rate.devicePerMinute', wait));
    return device;
  }

  /**
   * A device that registered again with a new key and signs with it is told why it is refused.
   * Only when its signature verifies with that pending key: whoever holds it already had the
   * 202 pending_rekey answer, so this says nothing a stranger could learn.
   */
  async function refuseIfRekeyPending(req: Req, deviceId: string): Promise<void> {
    const pending = deps.devices.repo.get(deviceId)?.pending_public_key;
    if (!pending) return;
    const ts = String(req.headers[HEADER.timestamp]);
    const canonical = canonicalString({ method: req.method, path: req.url, collectorId, deviceId, timestamp: ts, body: req.body });
    if (!(await deps.verifier.verify(pending, String(req.headers[HEADER.signature]), canonical, false))) return;
    refuse('rekey_pending', req, unauthorized('rekey_pending',
      `device ${deviceId} registered again with a new key, which waits for an operator: run \`outpost devices approve ${deviceId}\` to accept it, ` +
      'or sign with the key the device is registered with; nothing was stored', { device: deviceId }));
  }

  function json(req: Req): unknown {
    try {
      return JSON.parse(req.body.toString('utf8'));
    } catch (e) {
      throw badRequest('malformed_json', `the body is not valid JSON: ${(e as Error).message}`);
    }
  }

  async function route(req: Req): Promise<{ status: number; body: unknown; signFor?: Req & { deviceId: string } }> {
    const path = req.url.split('?')[0];
    // After a failed WAL sync nothing is acknowledged again until a restart (see GroupCommit).
    if (req.method === 'POST' && deps.ingest.commits.failed) throw deps.ingest.commits.failed;
    if (req.method === 'POST' && (path === '/device/v1/report' || path === '/device/v1/reports')) {
      const device = await authenticate(req);
      const body = json(req);
      const reports = path === '/device/v1/report' ? [parseReport(body, deps.limits)] : parseBatch(body, deps.limits);
      const { results, heldSeq } = await deps.ingest.submit(device, reports);
      return { status: 200, body: path === '/device/v1/report' ? { ...results[0], heldSeq } : { results, heldSeq } };
    }
    if (req.method === 'GET' && path === '/device/v1/collector') {
      // Public: what a device needs before it registers (the id its signatures must bind).
      const { collectorId: id, publicKeyB64, fingerprint } = deps.identity;
      return { status: 200, body: { collectorId: id, publicKey: publicKeyB64, fingerprint } };
    }
    if (req.method === 'POST' && path === '/device/v1/register') {
      const input = parseOrThrow(registrationSchema, json(req), 'registration');
      let result;
      try {
        // A bad token costs a query, not a signature check, and never reaches a worker's key cache.
        deps.devices.checkToken(input.token);
        await checkSignature(req, REGISTRATION_DEVICE_ID, input.publicKey, false);
        // The signature's bytes, not its text: base64 has more than one spelling of the same bytes.
        result = deps.devices.register(input, sha256hex(Buffer.from(String(req.headers[HEADER.signature]), 'base64')), 2 * windowMs);
      } catch (e) {
        if (e instanceof AppError && (e.code.startsWith('token_') || e.code === 'registration_replayed')) refuse(e.code, req, e);
        throw e;
      }
      const { device, outcome } = result;
      if (outcome === 'pending_rekey' || outcome === 'pending_approval') {
        const message =
          outcome === 'pending_rekey'
            ? 'this UDI is registered with another key; an operator must approve the new key'
            : device.pending_reason === 'revive'
              ? 'this UDI was deregistered; an operator must approve its return'
              : 'this UDI is known from RUM files without a key; an operator must approve this key';
        return { status: 202, body: { status: outcome, deviceId: device.id, message } };
      }
      const va = deps.accounts.require(device.va_id);
      return {
        status: outcome === 'registered' ? 201 : 200,
        body: {
          status: outcome,
          deviceId: device.id,
          virtualAccount: { id: va.id, name: va.name },
          policy: deps.policy.get(),
          collector: { id: collectorId, publicKey: deps.identity.publicKeyB64, fingerprint: deps.identity.fingerprint },
        },
      };
    }
    if (req.method === 'POST' && path === '/device/v1/rekey') {
      const device = await authenticate(req);
      const input = parseOrThrow(rekeySchema, json(req), 'rekey');
      const proofOk = await verifyRequestProof(req, device.id, input.publicKey, input.proof);
      if (!proofOk) refuse('bad_signature', req, unauthorized('bad_proof', 'the proof does not verify with the new public key'));
      const d = deps.devices.rekeySigned(device.id, device.public_key!, input.publicKey);
      return { status: 200, body: { status: 'rekeyed', deviceId: d.id } };
    }
    if (req.method === 'GET' && path === '/device/v1/acks') {
      const device = await authenticate(req);
      const since = Number(new URLSearchParams(req.url.split('?')[1] ?? '').get('since') ?? 0);
      if (!Number.isInteger(since) || since < 0) throw badRequest('invalid_query', 'since must be unix seconds');
      return { status: 200, body: deps.acks.forDevice(device.id, since * 1000, 1000), signFor: { ...req, deviceId: device.id } };
    }
    throw new AppError(404, 'not_found', `no device route ${req.method} ${path}`);
  }

  function verifyRequestProof(req: Req, deviceId: string, newKey: string, proof: string): Promise<boolean> {
    const text = rekeyProofString({ collectorId, deviceId, newPublicKey: newKey, timestamp: String(req.headers[HEADER.timestamp]) });
    return deps.verifier.verify(newKey, proof, text, false);
  }

  function send(res: ServerResponse, status: number, body: unknown, signFor?: Req & { deviceId: string }): void {
    const text = JSON.stringify(body);
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
    if (signFor) {
      const reply = replyString({
        method: signFor.method, path: signFor.url, collectorId, deviceId: signFor.deviceId,
        timestamp: String(signFor.headers[HEADER.timestamp]), body: text,
      });
      headers[HEADER.replySignature] = signWith(deps.identity.privateKey, reply).toString('base64');
      if (deps.clock.now() <= LEGACY_REPLY_SIGNATURE_UNTIL) {
        headers[HEADER.collectorSignature] = signWith(deps.identity.privateKey, text).toString('base64');
      }
    }
    res.writeHead(status, headers);
    res.end(text);
  }

  function fail(res: ServerResponse, r: Head, err: unknown): void {
    if (err instanceof AppError) {
      if (err.status === 503) res.setHeader('retry-after', '30');
      else if (err.status === 429) res.setHeader('retry-after', String(err.details.retryAfterSeconds));
      return send(res, err.status, toErrorBody(err));
    }
    const code = String((err as { code?: unknown }).code ?? '');
    if (code.startsWith('SQLITE_')) {
      // Disk full, I/O error: nothing was committed. 503 tells the device to keep the report and retry.
      deps.logger.error('device request not stored', { path: r.url.slice(0, 120), error: code });
      res.setHeader('retry-after', '30');
      return send(res, 503, toErrorBody(new AppError(503, 'storage_unavailable', `the collector could not store the request (${code}); it was not stored, retry later`)));
    }
    deps.logger.error('device request failed', { path: r.url.slice(0, 120), error: (err as Error).message });
    send(res, 500, toErrorBody(new AppError(500, 'internal', 'the collector could not process the request; it was not stored')));
  }

  /** Answers before the body is read, and closes the connection: the unread body is never buffered. */
  function refuseEarly(res: ServerResponse, head: Head, err: unknown): void {
    res.setHeader('connection', 'close');
    fail(res, head, err);
  }

  return function handle(req: IncomingMessage, res: ServerResponse): void {
    const head: Head = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, address: req.socket.remoteAddress ?? '' };
    let device: DeviceAuth | undefined;
    try {
      device = admit(head);
    } catch (e) {
      return refuseEarly(res, head, e);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const stop = (err: AppError) => {
      refused = true;
      chunks.length = 0;
      refuseEarly(res, head, err);
    };
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > deps.limits.maxBodyBytes) return stop(new AppError(413, 'body_too_large', `the body exceeds ${deps.limits.maxBodyBytes} bytes`));
      // Bytes held across all connections are bounded: a flood of unfinished bodies meets a 503, not the heap limit.
      if (!deps.budget.take(c.length)) {
        size -= c.length;
        return stop(new AppError(503, 'collector_busy', 'the collector is holding as many request bodies as it may (http.maxBufferedBytes); retry later'));
      }
      chunks.push(c);
    });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      deps.budget.release(size);
    };
    req.on('close', release);
    req.on('end', () => {
      if (refused) return;
      const r: Req = { ...head, body: Buffer.concat(chunks), device };
      chunks.length = 0;
      release();
      withRequest({ origin: req.socket.remoteAddress ?? 'unknown' }, () => route(r)).then((out) => send(res, out.status, out.body, out.signFor), (err: unknown) => fail(res, r, err));
    });
    req.on('error', () => res.destroy());
  };
}
