import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import type { LicenseService } from '../licenses/service.js';
import type { TransferPiece, TransferRow } from '../licenses/transfers.js';
import type { UsageKey } from '../licenses/ledger.js';
import { CssmError, type CssmClient } from './client.js';
import type { ResolvedAccount } from './accounts.js';
import type { Position } from './positions.js';

/**
 * The most licenses one entry of a transfer call carries. Cisco's API limits the quantity of an
 * entry without publishing the figure (GUESSED); a larger transfer goes as several entries of
 * one call, which Cisco applies whole or not at all.
 */
export const CISCO_TRANSFER_CHUNK = 100;

export interface CiscoTransferEntry {
  license: string;
  licenseType: 'PERPETUAL' | 'TERM';
  quantity: number;
  targetVirtualAccount: string;
}

/** A transfer's pieces as entries of Cisco's call: by license type, each at most CISCO_TRANSFER_CHUNK. */
export function transferEntries(pieces: TransferPiece[], license: string, target: string, chunk = CISCO_TRANSFER_CHUNK): CiscoTransferEntry[] {
  const byType = new Map<CiscoTransferEntry['licenseType'], number>();
  for (const p of pieces) {
    const type = p.kind === 'perpetual' ? 'PERPETUAL' : 'TERM';
    byType.set(type, (byType.get(type) ?? 0) + p.quantity);
  }
  const out: CiscoTransferEntry[] = [];
  for (const [licenseType, total] of byType) {
    for (let left = total; left > 0; left -= chunk) out.push({ license, licenseType, quantity: Math.min(chunk, left), targetVirtualAccount: target });
  }
  return out;
}

/** How many of a license a CSSM virtual account holds, over every license type. */
const held = (positions: Position[], cssmVa: string, license: string): number =>
  positions.filter((p) => p.cssmVa === cssmVa && p.license === license).reduce((s, p) => s + p.quantity, 0);

/**
 * License transfers with Cisco's cloud as the upstream: each provisional transfer goes once
 * through Cisco's public transfer call, from the source's CSSM virtual account to the
 * destination's; the positions read that shows the destination holding the moved quantity
 * confirms it. A call Cisco refuses (or a VA with no CSSM virtual account to move to) is a
 * refusal: the transfer is reverted with an alert. A transport failure fails the sync and leaves it for the next.
 */
export class CloudTransfers {
  constructor(
    private db: Db,
    private clock: Clock,
    private licenses: LicenseService,
  ) {}

  /**
   * `current` reads one CSSM virtual account's positions now: what the destination holds is
   * taken just before the call, not from the last stored read, so licenses it gained some other
   * way since then (a purchase, another portal transfer) are not taken for this transfer.
   */
  async send(
    client: CssmClient,
    resolved: ResolvedAccount,
    licenseOf: (vaId: string, tag: string) => string | null,
    current: (cssmVa: string) => Promise<Position[]>,
  ): Promise<void> {
    const cssmOf = new Map(resolved.mappings.map((m) => [m.vaId, m.cssm?.name ?? null]));
    const waiting = this.licenses.transfers.provisional().filter((t) => t.cisco_sent_at == null);
    for (const t of waiting) {
      const from = cssmOf.get(t.from_va_id) ?? null;
      const to = cssmOf.get(t.to_va_id) ?? null;
      const license = licenseOf(t.from_va_id, t.tag);
      const problem = !from || !to
        ? `virtual account ${!from ? t.from_va_id : t.to_va_id} is not mapped to a CSSM virtual account (cisco.cloud.virtualAccounts)`
        : !license ? `no CSSM license is known for ${t.tag} (map one with outpost cisco cloud tags)` : null;
      if (problem) {
        this.refuse(t, problem);
        continue;
      }
      const entries = transferEntries(JSON.parse(t.pieces) as TransferPiece[], license!, to!);
      const before = held(await current(to!), to!, license!);
      try {
        await client.call('POST', `/v1/accounts/${encodeURIComponent(resolved.account.domain)}/virtual-accounts/${encodeURIComponent(from!)}/licenses/transfer`, { licenses: entries });
      } catch (e) {
        if (e instanceof CssmError && e.status >= 400 && e.status < 500 && e.status !== 401) {
          this.refuse(t, `Cisco refused it: ${e.message}`);
          continue;
        }
        // Cisco unreachable or failing: the sync fails as any call's failure makes it, and the
        // transfer, still provisional and unsent, goes at the next one.
        throw e;
      }
      this.db.prepare('UPDATE license_transfers SET cisco_sent_at = ?, cisco_target_before = ? WHERE id = ? AND state = ?').run(this.clock.now(), before, t.id, 'provisional');
    }
  }

  /**
   * In the positions read's transaction, before its lines replace the VAs': a transfer Cisco
   * accepted is confirmed once the destination's position holds the moved quantity on top of
   * what it held when the call went.
   */
  confirm(positions: Position[], cssmOf: Map<string, string>, licenseOf: (vaId: string, tag: string) => string | null, touched: UsageKey[]): void {
    const sent = this.db.prepare("SELECT * FROM license_transfers WHERE state = 'provisional' AND cisco_sent_at IS NOT NULL").all() as TransferRow[];
    const outcomes = [];
    for (const t of sent) {
      const cssmVa = cssmOf.get(t.to_va_id);
      const license = licenseOf(t.from_va_id, t.tag);
      if (cssmVa && license && held(positions, cssmVa, license) >= (t.cisco_target_before ?? 0) + t.quantity) outcomes.push({ transferId: t.id, status: 'confirmed' as const, reason: null });
    }
    if (outcomes.length) this.licenses.transfers.settle(outcomes, 'cisco', touched);
  }

  private refuse(t: TransferRow, reason: string): void {
    this.db.transaction(() => {
      const touched: UsageKey[] = [];
      this.licenses.transfers.settle([{ transferId: t.id, status: 'refused', reason }], 'cisco', touched);
      this.licenses.refreshAlerts(touched);
    })();
  }
}
