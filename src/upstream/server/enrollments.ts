import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint } from '../../shared/ed25519.js';
import { verifyBundle, selfSignedKey } from '../../exchange/read.js';
import { AppError, conflict } from '../../shared/errors.js';
import { UpstreamError, type UpstreamService } from '../service.js';

export interface EnrollmentRequestRow {
  collector_id: string;
  public_key: string;
  fingerprint: string;
  account_name: string;
  file: string;
  received_at: number;
  status: 'pending' | 'enrolled';
  response_file: string | null;
}

export type Received = { status: 'pending' | 'enrolled'; collectorId: string; fingerprint: string };

/**
 * Enrollment requests posted over the connection. A request is only kept: nothing is pinned
 * until the upstream's operator has compared its fingerprint with the collector's operator
 * and runs `outpost upstream collector add --pending`.
 */
export async function receiveEnrollment(up: UpstreamService, tmpFile: string, dataDir: string, maxPending: number): Promise<Received> {
  let presented: Buffer | undefined;
  const v = await verifyBundle(tmpFile, { kinds: ['enrollment-request'], keyFor: (m) => (presented = selfSignedKey(m)) });
  const m = v.manifest;
  const fp = fingerprint(presented!);
  const existing = up.collector(m.collectorId);
  if (existing) {
    if (existing.public_key !== presented!.toString('base64')) {
      throw conflict('collector_exists', `collector ${m.collectorId} is already enrolled with another key; a replaced key needs a new collector identity`);
    }
    return { status: 'enrolled', collectorId: m.collectorId, fingerprint: fp };
  }
  // Collector ids are not bound to keys, and anyone may post: a request pending under an id
  // keeps it, so a stranger who learns the id cannot put their key (and fingerprint, in
  // `collector pending`) in its place before the operator pins it.
  const held = enrollmentRequest(up, m.collectorId);
  if (held?.status === 'pending' && held.public_key !== presented!.toString('base64')) {
    throw conflict('enrollment_pending', `collector ${m.collectorId} already has an enrollment request pending with key ${held.fingerprint}; a request with another key is refused`);
  }
  if (!held) {
    const { n } = up.db.prepare("SELECT count(*) AS n FROM enrollment_requests WHERE status = 'pending'").get() as { n: number };
    if (n >= maxPending) {
      throw new AppError(503, 'too_many_pending', `${n} enrollment requests are waiting for the upstream's operator (upstream.maxPendingEnrollments): none is kept until some are pinned`);
    }
  }
  const dir = join(dataDir, 'enrollments');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The manifest's collector id is checked (col_ and hex): safe as a file name.
  const file = join(dir, `${m.collectorId}.opb`);
  renameSync(tmpFile, file);
  // A later request from the same collector and key replaces its earlier one (a new bundle id).
  up.db
    .prepare(
      `INSERT INTO enrollment_requests (collector_id, public_key, fingerprint, account_name, file, received_at, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')
       ON CONFLICT (collector_id) DO UPDATE SET public_key = excluded.public_key, fingerprint = excluded.fingerprint, account_name = excluded.account_name,
         file = excluded.file, received_at = excluded.received_at, status = 'pending', response_file = NULL`,
    )
    .run(m.collectorId, presented!.toString('base64'), fp, String(m.meta.accountName ?? ''), file, up.clock.now());
  up.event('collector.enrollment_requested', m.collectorId, { fingerprint: fp, accountName: String(m.meta.accountName ?? '') });
  return { status: 'pending', collectorId: m.collectorId, fingerprint: fp };
}

export function enrollmentRequest(up: UpstreamService, collectorId: string): EnrollmentRequestRow | undefined {
  return up.db.prepare('SELECT * FROM enrollment_requests WHERE collector_id = ?').get(collectorId) as EnrollmentRequestRow | undefined;
}

export function pendingEnrollments(up: UpstreamService): { collectorId: string; fingerprint: string; accountName: string; receivedAt: string }[] {
  return (up.db.prepare("SELECT * FROM enrollment_requests WHERE status = 'pending' ORDER BY received_at").all() as EnrollmentRequestRow[]).map((r) => ({
    collectorId: r.collector_id, fingerprint: r.fingerprint, accountName: r.account_name, receivedAt: new Date(r.received_at).toISOString(),
  }));
}

/** Pins a posted request, exactly as from a file; the response waits for the collector's signed fetch. */
export async function pinPending(up: UpstreamService, collectorId: string, o: { account: string; fingerprint?: string | undefined }) {
  const req = enrollmentRequest(up, collectorId);
  if (!req) throw new UpstreamError('unknown_request', `no enrollment request from collector ${collectorId} has been received: see \`outpost upstream collector pending\``);
  const r = await up.addCollector(req.file, o);
  if (r.pinned) {
    up.db.prepare("UPDATE enrollment_requests SET status = 'enrolled', response_file = ? WHERE collector_id = ?").run(r.responseFile!, collectorId);
  }
  return r;
}

/** The key a signed enrollment fetch may use: the one its request carried, or the enrolled collector's. */
export function enrollmentKeyFor(up: UpstreamService, collectorId: string, keyId: string): Buffer | undefined {
  const req = enrollmentRequest(up, collectorId);
  if (req && req.fingerprint === keyId) return Buffer.from(req.public_key, 'base64');
  const c = up.collector(collectorId);
  if (c && c.key_id === keyId) return Buffer.from(c.public_key, 'base64');
  return undefined;
}
