import { z } from 'zod';
import { newId } from '../shared/ids.js';
import { debitOrder } from '../licenses/debit-order.js';
import type { TransferOutcomeRecord, UsageSummaryRecord } from '../exchange/records.js';
import type { UpstreamService } from './service.js';

export const transferRecordSchema = z.strictObject({
  transferId: z.string().min(1).max(100),
  fromVaId: z.string().min(1).max(200),
  toVaId: z.string().min(1).max(200),
  tag: z.string().min(1).max(256),
  quantity: z.number().int().positive(),
  reason: z.string().max(500).nullable(),
  requestedAt: z.iso.datetime(),
  lines: z.array(z.strictObject({
    kind: z.enum(['perpetual', 'subscription', 'term', 'unlimited']),
    quantity: z.number().int().positive(),
    startsAt: z.iso.datetime(),
    endsAt: z.iso.datetime().nullable(),
  })).max(10_000),
});
export type TransferInput = z.infer<typeof transferRecordSchema>;

interface LineRow { id: string; va_id: string; tag: string; display_name: string; kind: string; quantity: number; starts_at: number; ends_at: number | null }

/**
 * Applies a collector's license transfers to the upstream's own ledger, in the caller's
 * transaction, and returns the answer to each. The upstream is the truth: it checks the VAs
 * are the account's and the source has the quantity available (owned now by the upstream's
 * lines, minus what the collector's usage summary in this same bundle says is in use), debits
 * its own lines by the collector's rule (soonest-ending first, perpetual last) and gives the
 * destination lines of the same kind and validity. Both VAs' snapshot versions move, so the
 * response carries their new lines. A transfer answered before is answered the same again.
 */
export function applyTransfers(up: UpstreamService, collectorId: string, accountId: string, transfers: TransferInput[], usage: UsageSummaryRecord[]): TransferOutcomeRecord[] {
  const { db } = up;
  const now = up.clock.now();
  const known = db.prepare('SELECT status, reason FROM license_transfers WHERE collector_id = ? AND transfer_id = ?');
  const vaOf = db.prepare('SELECT id, name FROM virtual_accounts WHERE id = ? AND account_id = ?');
  const record = db.prepare(
    `INSERT INTO license_transfers (collector_id, transfer_id, account_id, from_va_id, to_va_id, tag, quantity, status, reason, applied_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const out: TransferOutcomeRecord[] = [];
  for (const t of transfers) {
    const before = known.get(collectorId, t.transferId) as { status: 'confirmed' | 'refused'; reason: string | null } | undefined;
    if (before) {
      out.push({ transferId: t.transferId, status: before.status, reason: before.reason });
      continue;
    }
    const check = (): string | null => {
      const from = vaOf.get(t.fromVaId, accountId) as { id: string; name: string } | undefined;
      const to = vaOf.get(t.toVaId, accountId) as { id: string; name: string } | undefined;
      if (!from || !to) return `the account has no virtual account ${!from ? t.fromVaId : t.toVaId}`;
      if (from.id === to.id) return 'the source and the destination are the same virtual account';
      const valid = (db.prepare('SELECT * FROM entitlements WHERE va_id = ? AND tag = ?').all(from.id, t.tag) as LineRow[]).filter(
        (l) => l.starts_at <= now && (l.ends_at === null || l.ends_at > now),
      );
      if (valid.some((l) => l.kind === 'unlimited')) return `${from.name} holds ${t.tag} as an unlimited license, which has no quantity to transfer`;
      const owned = valid.reduce((s, l) => s + l.quantity, 0);
      const inUse = usage.find((u) => u.vaId === from.id && u.tag === t.tag)?.inUse ?? 0;
      const available = Math.max(0, owned - inUse);
      if (t.quantity > available) return `not enough available upstream: ${from.name} has ${available} of ${t.tag} available (${owned} owned, ${inUse} in use), not ${t.quantity}`;
      let left = t.quantity;
      const credit = db.prepare('INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      for (const l of valid.sort(debitOrder)) {
        if (left === 0) break;
        const take = Math.min(l.quantity, left);
        if (take <= 0) continue;
        left -= take;
        if (take === l.quantity) db.prepare('DELETE FROM entitlements WHERE id = ?').run(l.id);
        else db.prepare('UPDATE entitlements SET quantity = quantity - ? WHERE id = ?').run(take, l.id);
        credit.run(newId('ent', now), to.id, t.tag, l.display_name, l.kind, take, l.starts_at, l.ends_at, now);
      }
      db.prepare('UPDATE virtual_accounts SET version = version + 1 WHERE id IN (?, ?)').run(from.id, to.id);
      return null;
    };
    const refusal = check();
    const status = refusal ? 'refused' : 'confirmed';
    record.run(collectorId, t.transferId, accountId, t.fromVaId, t.toVaId, t.tag, t.quantity, status, refusal, now);
    up.event(refusal ? 'license.transfer_refused' : 'license.transfer_applied', collectorId, { transfer: t.transferId, from: t.fromVaId, to: t.toVaId, tag: t.tag, quantity: t.quantity, ...(refusal ? { reason: refusal } : {}) });
    out.push({ transferId: t.transferId, status, reason: refusal });
  }
  return out;
}
