import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { conflict } from '../shared/errors.js';
import type { Identity } from '../identity/identity.js';
import type { EnrollmentService } from '../exchange/enrollment.js';
import { SYNC_BASE } from './protocol.js';
import type { SyncTransport } from './transport.js';
import { SyncFailure } from './failure.js';
import { errorCode, errorMessage } from './reply.js';

const code = errorCode;
const words = (json: unknown) => errorMessage(json) || 'without a reason';

/**
 * Enrollment over the connection: the same request and response bundles as on paper, posted
 * and fetched. Trust still comes from the fingerprints the two operators compare out of band:
 * the upstream pins the collector only when its operator confirms, and the collector pins the
 * upstream only when the fingerprint given here matches.
 */
export class SyncEnrollment {
  constructor(
    private identity: Identity,
    private enrollment: EnrollmentService,
    private connect: () => SyncTransport,
    private bundleDir: string,
    private url: string,
  ) {}

  private need(): void {
    if (!this.url) throw conflict('no_upstream', 'no upstream is configured: set exchange.connection.url (OUTPOST_EXCHANGE_CONNECTION_URL) to its https address');
  }

  /** Posts an enrollment request; the upstream's operator then confirms our fingerprint. */
  async request(accountName: string, actor: string) {
    this.need();
    const req = await this.enrollment.request(accountName, actor);
    const t = this.connect();
    try {
      const r = await t.postBundle(`${SYNC_BASE}/enroll`, req.file);
      if (r.status !== 200 && r.status !== 202) throw new SyncFailure(code(r.json) ?? `http_${r.status}`, `the upstream refused the enrollment request: ${words(r.json)}`);
      return { status: r.status === 200 ? 'enrolled' : 'pending', collectorId: req.collectorId, fingerprint: req.fingerprint, upstream: this.url };
    } finally {
      await t.close().catch(() => {});
    }
  }

  /** Fetches the upstream's answer; pins its key when `fingerprint` matches it (without one, shows it). */
  async trust(fingerprint: string | undefined, actor: string) {
    this.need();
    const t = this.connect();
    const dir = join(this.bundleDir, 'received');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `enrollment-response-${this.identity.collectorId}.bundle`);
    try {
      const r = await t.fetchBundle(`${SYNC_BASE}/enroll/${encodeURIComponent(this.identity.collectorId)}`, { wait: 0, toFile: file, maxBytes: 1 << 20 });
      if (r.status === 202) return { status: 'pending' as const, message: "the upstream's operator has not confirmed this collector yet" };
      if (r.status !== 200 || !r.file) throw new SyncFailure(code(r.json) ?? `http_${r.status}`, `the upstream did not give its enrollment response: ${words(r.json)}`);
      const v = await this.enrollment.trust(r.file, fingerprint, actor);
      return { status: v.pinned ? ('pinned' as const) : ('confirm' as const), ...v };
    } finally {
      rmSync(file, { force: true });
      await t.close().catch(() => {});
    }
  }
}
