import { join } from 'node:path';
import { newId } from '../shared/ids.js';
import { fingerprint } from '../shared/ed25519.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Identity } from '../identity/identity.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import { identitySigner, writeBundle } from './write.js';
import { verifyBundle, selfSignedKey } from './read.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import type { ExchangeState } from './state.js';
import { AppError } from '../shared/errors.js';

/**
 * Collector and upstream meet through the same bundle mechanism: the collector writes a
 * self-signed request carrying its key; the upstream answers with its own. Each side prints
 * fingerprints, and nothing is pinned until the operator has compared them out of band.
 */
export class EnrollmentService {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private state: ExchangeState,
    private accounts: AccountService,
    private events: EventService,
    private bundleDir: string,
  ) {}

  async request(accountName: string, actor: string): Promise<{ file: string; fingerprint: string; collectorId: string }> {
    const now = this.clock.now();
    const out = await writeBundle(
      join(this.bundleDir, 'outbox', `enrollment-request-${this.identity.collectorId}${BUNDLE_EXTENSION}`),
      {
        kind: 'enrollment-request', bundleId: newId('bun', now), collectorId: this.identity.collectorId, accountId: this.accounts.account().id,
        sequence: 0, lastAnsweredHash: null, answers: null, period: null, createdAt: new Date(now).toISOString(),
        eventChainHead: this.events.chainHead(),
        meta: { publicKey: this.identity.publicKeyB64, accountName },
      },
      [],
      identitySigner(this.identity),
    );
    this.db.transaction(() => this.events.append('exchange.enrollment_requested', actor, this.identity.collectorId, null, { accountName, file: out.path }))();
    return { file: out.path, fingerprint: this.identity.fingerprint, collectorId: this.identity.collectorId };
  }

  /** Reads the upstream's enrollment response; pins its key only when the fingerprint given matches. */
  async trust(file: string, confirmed: string | undefined, actor: string): Promise<{ fingerprint: string; accountId: string; pinned: boolean }> {
    let presented: Buffer | undefined;
    const v = await verifyBundle(file, { kinds: ['enrollment-response'], keyFor: (m) => (presented = selfSignedKey(m)) });
    const m = v.manifest;
    if (m.collectorId !== this.identity.collectorId) {
      throw new AppError(400, 'wrong_collector', `the enrollment response is for collector ${m.collectorId}, not this one`);
    }
    const fp = fingerprint(presented!);
    const accountId = String(m.meta.accountId ?? m.accountId);
    if (!confirmed) return { fingerprint: fp, accountId, pinned: false };
    if (confirmed.toLowerCase() !== fp) {
      throw new AppError(400, 'fingerprint_mismatch', `the upstream key has fingerprint ${fp}, not ${confirmed}: it was not pinned`);
    }
    this.db.transaction(() => {
      this.state.pinUpstreamKey(presented!, this.clock.now());
      this.state.upstreamAccountId = accountId;
      this.events.append('exchange.upstream_key_pinned', actor, fp, null, { accountId, upstreamId: m.meta.upstreamId ?? null });
    })();
    return { fingerprint: fp, accountId, pinned: true };
  }
}
