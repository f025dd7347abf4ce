import { BundleError } from '../exchange/read.js';
import type { Manifest } from '../exchange/manifest.js';
import { epochFault, type EpochStatement } from '../backup/epoch.js';
import { pinnedKeys } from './checkpoints.js';
import type { CollectorRow, UpstreamService } from './service.js';

export interface EpochCheck {
  /** The sequence a usage bundle must be above not to be a replay. */
  hwm: number;
  /** A restore this bundle announces, to record with it; null when the epoch is the known one. */
  newEpoch: EpochStatement | null;
}

/**
 * Judges a usage bundle's epoch (see backup/epoch.ts): the known epoch goes on as before; a
 * higher one, signed by the collector, restarts its sequence at the statement's; an earlier one,
 * or none from a collector that was restored, is refused as a bundle from before the restore.
 */
export function checkEpoch(up: UpstreamService, c: CollectorRow, m: Manifest): EpochCheck {
  const raw = m.meta.epoch;
  if (raw === undefined) {
    if (c.epoch > 0) {
      throw new BundleError('stale_epoch', `collector ${c.id} was restored from a backup (epoch ${c.epoch}); this bundle carries no epoch and was made before that restore: refused`);
    }
    return { hwm: c.usage_hwm, newEpoch: null };
  }
  const { statement, fault } = epochFault(raw, c.id, pinnedKeys(up, c.id));
  if (!statement) throw new BundleError('bad_epoch', `the bundle's ${fault}`);
  if (statement.epoch < c.epoch) {
    throw new BundleError('stale_epoch', `the bundle is of epoch ${statement.epoch}, but collector ${c.id} was restored since (epoch ${c.epoch}): refused as made before that restore`);
  }
  if (statement.epoch === c.epoch) return { hwm: c.usage_hwm, newEpoch: null };
  return { hwm: statement.fromSequence, newEpoch: statement };
}

/** Records an accepted new epoch; call inside the transaction that records the bundle. */
export function recordEpoch(up: UpstreamService, c: CollectorRow, s: EpochStatement, bundleId: string, sequence: number): void {
  up.db.prepare('UPDATE collectors SET epoch = ?, usage_hwm = ? WHERE id = ?').run(s.epoch, sequence, c.id);
  up.event('collector.restored', c.id, {
    epoch: s.epoch, previousEpoch: c.epoch, fromSequence: s.fromSequence, previousHwm: c.usage_hwm, restoredAt: s.restoredAt,
    backupCreatedAt: s.backupCreatedAt, backupEventHead: s.backupEventHead.id, bundle: bundleId,
  });
}
