import { isAbsolute } from 'node:path';
import { processUsageBundle } from '../process.js';
import { UpstreamError, type EntitlementInput, type UpstreamService } from '../service.js';
import { pendingEnrollments, pinPending } from './enrollments.js';
import type { SyncJobs } from './jobs.js';
import { exportCheckpoints } from '../checkpoints.js';
import type { OnProgress } from '../../shared/progress.js';

/**
 * What the upstream's operator can do, one function each: the CLI runs them on the store it
 * opens, or asks the running upstream to (its admin socket), which runs the same functions.
 */
export interface Operations {
  identity(a: Record<string, never>): Promise<{ upstreamId: string; fingerprint: string; publicKey: string; dataDir: string }>;
  collectorAdd(a: { file?: string; pending?: string; account: string; fingerprint?: string }): ReturnType<UpstreamService['addCollector']>;
  collectorPending(a: Record<string, never>): Promise<ReturnType<typeof pendingEnrollments>>;
  collectorRotate(a: { file: string }): ReturnType<UpstreamService['acceptCollectorRotation']>;
  rotateKey(a: { graceDays: number }): ReturnType<UpstreamService['rotateOwnKey']>;
  entitlementAdd(a: EntitlementInput): Promise<{ vaId: string; version: number }>;
  process(a: { file: string; force: boolean }, onProgress?: OnProgress): ReturnType<typeof processUsageBundle>;
  status(a: Record<string, never>): Promise<UpstreamStatus>;
  checkpointsExport(a: { collector: string; file: string }): ReturnType<typeof exportCheckpoints>;
}

export interface UpstreamStatus {
  upstreamId: string;
  fingerprint: string;
  serving: boolean;
  jobs: { queued: number; processing: number; done: number; failed: number };
  collectors: { id: string; account: string; fingerprint: string; usageHwm: number; responses: number; addedAt: string }[];
  pendingEnrollments: number;
}

export type OperationName = keyof Operations;

/** The admin socket's routes, one an operation. */
export const ADMIN_ROUTES: Record<OperationName, { method: 'GET' | 'POST'; path: string; writes: boolean; progress?: boolean }> = {
  identity: { method: 'GET', path: '/admin/v1/identity', writes: false },
  collectorAdd: { method: 'POST', path: '/admin/v1/collectors', writes: true },
  collectorPending: { method: 'GET', path: '/admin/v1/collectors/pending', writes: false },
  collectorRotate: { method: 'POST', path: '/admin/v1/collectors/rotate', writes: true },
  rotateKey: { method: 'POST', path: '/admin/v1/rotate-key', writes: true },
  entitlementAdd: { method: 'POST', path: '/admin/v1/entitlements', writes: true },
  // Streams its progress as NDJSON to a caller that asks for it (Accept: application/x-ndjson).
  process: { method: 'POST', path: '/admin/v1/process', writes: true, progress: true },
  status: { method: 'GET', path: '/admin/v1/status', writes: false },
  // Reads only, but a POST: it names the file to write.
  checkpointsExport: { method: 'POST', path: '/admin/v1/checkpoints/export', writes: false },
};

/** A file named to a running upstream is read by that process: it must not depend on the caller's folder. */
function absolute(file: unknown, what: string): string {
  if (typeof file !== 'string' || !isAbsolute(file)) throw new UpstreamError('bad_request', `${what} must be an absolute path`);
  return file;
}

export function operations(up: UpstreamService, jobs?: SyncJobs): Operations {
  return {
    identity: async () => ({ upstreamId: up.identity.collectorId, fingerprint: up.identity.fingerprint, publicKey: up.identity.publicKeyB64, dataDir: up.dataDir }),
    collectorAdd: async (a) => {
      if (typeof a.account !== 'string' || !a.account) throw new UpstreamError('bad_request', 'account is required');
      if (a.pending) return pinPending(up, a.pending, { account: a.account, fingerprint: a.fingerprint });
      return up.addCollector(absolute(a.file, 'the request file'), { account: a.account, fingerprint: a.fingerprint });
    },
    collectorPending: async () => pendingEnrollments(up),
    collectorRotate: (a) => up.acceptCollectorRotation(absolute(a.file, 'the statement file')),
    rotateKey: (a) => {
      if (!Number.isInteger(a.graceDays) || a.graceDays < 0 || a.graceDays > 365) throw new UpstreamError('bad_request', 'graceDays must be 0 to 365');
      return up.rotateOwnKey(a.graceDays);
    },
    entitlementAdd: async (a) => up.addEntitlement(a),
    checkpointsExport: (a) => {
      if (typeof a.collector !== 'string' || !a.collector) throw new UpstreamError('bad_request', 'collector is required');
      return exportCheckpoints(up, a.collector, absolute(a.file, 'the output file'));
    },
    process: (a, onProgress) => processUsageBundle(up, absolute(a.file, 'the usage bundle'), { force: Boolean(a.force), onProgress }),
    status: async () => {
      const counts = jobs?.counts();
      const fromRows = () => {
        const out = { queued: 0, processing: 0, done: 0, failed: 0 };
        for (const r of up.db.prepare('SELECT status, count(*) AS n FROM sync_jobs GROUP BY status').all() as { status: keyof typeof out; n: number }[]) out[r.status] = r.n;
        return out;
      };
      const collectors = up.db
        .prepare('SELECT c.id, a.name AS account, c.key_id, c.usage_hwm, c.out_seq, c.added_at FROM collectors c JOIN accounts a ON a.id = c.account_id ORDER BY c.added_at, c.id')
        .all() as { id: string; account: string; key_id: string; usage_hwm: number; out_seq: number; added_at: number }[];
      return {
        upstreamId: up.identity.collectorId,
        fingerprint: up.identity.fingerprint,
        serving: Boolean(jobs),
        jobs: counts ?? fromRows(),
        collectors: collectors.map((c) => ({ id: c.id, account: c.account, fingerprint: c.key_id, usageHwm: c.usage_hwm, responses: c.out_seq, addedAt: new Date(c.added_at).toISOString() })),
        pendingEnrollments: pendingEnrollments(up).length,
      };
    },
  };
}
