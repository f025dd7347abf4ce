import { join } from 'node:path';
import { newId } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import { commitKey, nextKey, type Identity } from '../identity/identity.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import { identitySigner, writeBundle } from './write.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import { rotationMeta } from './rotation.js';
import type { ExchangeState } from './state.js';

/**
 * Rotates the collector's own key: a statement signed by the old key and the new, naming the
 * sequence from which the new key signs, goes to the outbox for the upstream; bundles already
 * in transit under the old key stay valid there for the grace period. A key believed stolen
 * is not rotated (the thief could rotate too) but replaced by a new enrollment.
 */
export class KeyRotationService {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private state: ExchangeState,
    private accounts: AccountService,
    private events: EventService,
    private opts: { dataDir: string; bundleDir: string },
  ) {}

  async rotate(graceDays: number, actor: string): Promise<{ file: string; oldKeyId: string; newKeyId: string; fromSequence: number }> {
    const now = this.clock.now();
    const sequence = this.db.transaction(() => this.state.nextOutSequence())();
    const next = nextKey();
    const oldKeyId = this.identity.fingerprint;
    const meta = rotationMeta({ subjectId: this.identity.collectorId, oldKeyId, newKey: next.publicKey, fromSequence: sequence + 1, graceDays, signWithNew: next.signDetached });
    const bundleId = newId('bun', now);
    const out = await writeBundle(
      join(this.opts.bundleDir, 'outbox', `key-rotation-seq${String(sequence).padStart(6, '0')}${BUNDLE_EXTENSION}`),
      {
        kind: 'key-rotation', bundleId, collectorId: this.identity.collectorId,
        accountId: this.state.upstreamAccountId ?? this.accounts.account().id, sequence, lastAnsweredHash: this.state.lastAnsweredHash,
        answers: null, period: null, createdAt: new Date(now).toISOString(), eventChainHead: this.events.chainHead(), meta,
      },
      [],
      identitySigner(this.identity), // still the old key: the new one takes over below
    );
    commitKey(this.opts.dataDir, 'collector', this.identity, next);
    this.db.transaction(() => {
      this.state.recordBundle({ id: bundleId, direction: 'out', kind: 'key-rotation', sequence, hash: out.hash, file: out.path, period: null, records: 0, created_at: now, answers: null, forced: 0 });
      this.events.append('collector.key_rotated', actor, this.identity.collectorId, null, { from: oldKeyId, to: meta.newKeyId, fromSequence: sequence + 1, graceDays, file: out.path });
    })();
    return { file: out.path, oldKeyId, newKeyId: meta.newKeyId, fromSequence: sequence + 1 };
  }
}
