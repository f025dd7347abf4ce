import { newId } from '../shared/ids.js';
import { badRequest, conflict, forbidden, notFound } from '../shared/errors.js';
import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AccountService } from '../accounts/service.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { allows, type Principal, type Role } from '../users/roles.js';
import type { EntitlementKind, EntitlementRepository, EntitlementRow } from './entitlements.js';
import type { UsageKey } from './ledger.js';
import { debitOrder } from './debit-order.js';

export { debitOrder };

export type TransferState = 'provisional' | 'confirmed' | 'refused';

/** One line's worth of a transfer: what left the source, and what the destination holds. */
export interface TransferPiece {
  displayName: string;
  kind: EntitlementKind;
  quantity: number;
  startsAt: number;
  endsAt: number | null;
}

export interface TransferRow {
  id: string;
  from_va_id: string;
  to_va_id: string;
  tag: string;
  quantity: number;
  reason: string | null;
  state: TransferState;
  pieces: string;
  requested_by: string;
  requested_at: number;
  settled_at: number | null;
  refusal: string | null;
  /** Cisco's cloud as the upstream (cssm/transfers.ts): when its transfer call accepted it. */
  cisco_sent_at?: number | null;
  cisco_target_before?: number | null;
  /** NULL: the upstream answered; 'manual': an operator settled it by hand. */
  settled_by?: 'manual' | null;
  settle_reason?: string | null;
}

export interface TransferRequest {
  fromVaId: string;
  toVaId: string;
  tag: string;
  quantity: number;
  reason?: string | undefined;
}

/** How an operator settles a provisional transfer by hand. */
export interface SettleRequest {
  as: 'confirmed' | 'reverted';
  reason: string;
}

/** What the upstream said of a transfer. */
export interface TransferOutcome {
  transferId: string;
  status: 'confirmed' | 'refused';
  reason: string | null;
}

/**
 * License transfers between virtual accounts. The local ledger changes at once: the source's
 * lines are debited (debitOrder), the destination gets lines of the same kind and validity
 * marked with the transfer, so compliance of both follows and the account's totals stay. A
 * transfer is provisional until the upstream confirms or refuses it; meanwhile it is laid over
 * every entitlement snapshot that replaces either VA's lines (overlay), so a snapshot made
 * before the upstream saw it never erases it. A refusal reverts it and raises an alert.
 */
export class TransferService {
  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private alerts: AlertService,
    private events: EventService,
    private entitlements: EntitlementRepository,
    private refreshAlerts: (keys: Iterable<UsageKey>) => void,
  ) {}

  request(input: TransferRequest, principal: Principal | null, actor: string) {
    if (input.fromVaId === input.toVaId) throw badRequest('same_virtual_account', 'a transfer needs two different virtual accounts: fromVaId and toVaId name the same one');
    return this.db.transaction(() => {
      const from = this.accounts.require(input.fromVaId);
      const to = this.accounts.require(input.toVaId);
      // Rights are read here, in the transaction that writes: a role taken away a moment ago counts.
      this.requireOperate(principal, [from.id, to.id]);
      const now = this.clock.now();
      const lines = this.entitlements.byVa(from.id).filter((l) => l.tag === input.tag);
      const valid = lines.filter((l) => l.starts_at <= now && (l.ends_at === null || l.ends_at > now));
      if (valid.some((l) => l.kind === 'unlimited')) {
        throw conflict('unlimited_not_transferable', `${from.name} holds ${input.tag} as an unlimited license, which has no quantity to transfer`, { tag: input.tag });
      }
      const owned = valid.reduce((s, l) => s + l.quantity, 0);
      const inUse = (this.db.prepare('SELECT in_use FROM va_usage WHERE va_id = ? AND tag = ?').pluck().get(from.id, input.tag) as number | undefined) ?? 0;
      const available = Math.max(0, owned - inUse);
      if (input.quantity > available) {
        throw conflict(
          'not_enough_available',
          `${from.name} has ${available} of ${input.tag} available (${owned} owned now, ${inUse} in use): it cannot transfer ${input.quantity}`,
          { available, owned, inUse, requested: input.quantity },
        );
      }
      const id = newId('trf', now);
      const pieces = this.debit(valid, input.quantity);
      for (const p of pieces) this.credit(to.id, input.tag, id, p, now);
      const row: TransferRow = {
        id, from_va_id: from.id, to_va_id: to.id, tag: input.tag, quantity: input.quantity, reason: input.reason ?? null, state: 'provisional',
        pieces: JSON.stringify(pieces), requested_by: actor, requested_at: now, settled_at: null, refusal: null,
      };
      this.db
        .prepare(
          `INSERT INTO license_transfers (id, from_va_id, to_va_id, tag, quantity, reason, state, pieces, requested_by, requested_at)
           VALUES (@id, @from_va_id, @to_va_id, @tag, @quantity, @reason, @state, @pieces, @requested_by, @requested_at)`,
        )
        .run(row);
      const details = { from: from.id, to: to.id, tag: input.tag, quantity: input.quantity, reason: row.reason, pieces: pieces.length };
      this.events.append('license.transfer_requested', actor, id, from.id, details);
      this.refreshAlerts([{ vaId: from.id, tag: input.tag }, { vaId: to.id, tag: input.tag }]);
      return this.view(row);
    })();
  }

  list(vaIds: string[] | null, state?: TransferState) {
    const rows = this.db.prepare('SELECT * FROM license_transfers ORDER BY requested_at DESC, id DESC').all() as TransferRow[];
    return rows
      .filter((r) => !vaIds || vaIds.includes(r.from_va_id) || vaIds.includes(r.to_va_id))
      .filter((r) => !state || r.state === state)
      .map((r) => this.view(r));
  }

  get(id: string) {
    const r = this.row(id);
    if (!r) throw notFound('transfer', id);
    return this.view(r);
  }

  /** The transfers an upstream has still to answer, oldest first. */
  provisional(): TransferRow[] {
    return this.db.prepare("SELECT * FROM license_transfers WHERE state = 'provisional' ORDER BY requested_at, id").all() as TransferRow[];
  }

  /**
   * Lays the provisional transfers over a VA whose lines a snapshot has just replaced: debits
   * again what each took from it, credits again what each gave it. Runs in the snapshot's
   * transaction. A snapshot that holds less than a transfer took (the upstream sold or moved
   * lines meanwhile) is debited what it holds: the upstream's answer settles the rest.
   */
  overlay(vaId: string, touched: UsageKey[]): void {
    const now = this.clock.now();
    for (const t of this.provisional()) {
      if (t.from_va_id !== vaId && t.to_va_id !== vaId) continue;
      const pieces = JSON.parse(t.pieces) as TransferPiece[];
      if (t.from_va_id === vaId) {
        const lines = this.entitlements.byVa(vaId).filter((l) => l.tag === t.tag && l.kind !== 'unlimited');
        for (const p of pieces) {
          const same = lines.filter((l) => l.kind === p.kind && l.starts_at === p.startsAt && l.ends_at === p.endsAt && l.quantity > 0);
          const left = this.take(same.sort(debitOrder), p.quantity);
          if (left > 0) this.take(lines.filter((l) => l.quantity > 0).sort(debitOrder), left);
        }
      }
      if (t.to_va_id === vaId) for (const p of pieces) this.credit(vaId, t.tag, t.id, p, now);
      touched.push({ vaId, tag: t.tag });
    }
  }

  /**
   * Applies the upstream's answers. A confirmation settles the transfer (the snapshot that
   * follows it holds the moved lines); a refusal gives the source back what it gave and takes
   * the credited lines away, with an alert that says why. Runs in the caller's transaction.
   * Returns the counts; an answer about a transfer already settled or unknown changes nothing.
   */
  settle(outcomes: Iterable<TransferOutcome>, actor: string, touched: UsageKey[]): { confirmed: number; refused: number } {
    const n = { confirmed: 0, refused: 0 };
    const now = this.clock.now();
    for (const o of outcomes) {
      const t = this.row(o.transferId);
      if (!t || t.state !== 'provisional') continue;
      this.db.prepare('UPDATE license_transfers SET state = ?, settled_at = ?, refusal = ? WHERE id = ?').run(o.status, now, o.status === 'refused' ? (o.reason ?? 'no reason given') : null, t.id);
      touched.push({ vaId: t.from_va_id, tag: t.tag }, { vaId: t.to_va_id, tag: t.tag });
      const details = { from: t.from_va_id, to: t.to_va_id, tag: t.tag, quantity: t.quantity };
      if (o.status === 'confirmed') {
        n.confirmed++;
        this.events.append('license.transfer_confirmed', actor, t.id, t.from_va_id, details);
        continue;
      }
      n.refused++;
      const reason = o.reason ?? 'no reason given';
      this.events.append('license.transfer_refused', actor, t.id, t.from_va_id, { ...details, reason });
      this.revert(t, now);
      this.events.append('license.transfer_reverted', actor, t.id, t.from_va_id, details);
      const names = (id: string) => this.accounts.repo.get(id)?.name ?? id;
      this.alerts.raise('transfer_refused', {
        subject: t.id,
        severity: 'warning',
        message: `the upstream refused the transfer of ${t.quantity} ${t.tag} from ${names(t.from_va_id)} to ${names(t.to_va_id)}: ${reason}; it has been reverted`,
        details: { vaId: t.from_va_id, toVaId: t.to_va_id, tag: t.tag, quantity: t.quantity, reason, transferId: t.id },
      });
    }
    return n;
  }

  /**
   * An operator settles a provisional transfer by hand, when the upstream will never answer it
   * (Cisco's positions cannot tell it apart). `confirmed`: the upstream is taken to hold it, so
   * it is laid over no snapshot any more; the ledger stays as it is until the next snapshot
   * replaces it. `reverted`: undone locally as a refusal does. Either way it leaves the
   * provisional set, so it is neither sent to Cisco nor carried in a bundle again. The rights
   * and the state are read in the transaction that writes.
   */
  settleByHand(id: string, input: SettleRequest, principal: Principal | null, actor: string) {
    return this.db.transaction(() => {
      const t = this.row(id);
      if (!t) throw notFound('transfer', id);
      this.requireOperate(principal, [t.from_va_id, t.to_va_id]);
      if (t.state !== 'provisional') {
        throw conflict('transfer_not_provisional', `transfer ${t.id} is ${t.state}, not provisional: only a provisional transfer can be settled`, { state: t.state });
      }
      const now = this.clock.now();
      // Cisco accepted the call: settling here does not take it back at Cisco.
      const ciscoMayApply = input.as === 'reverted' && t.cisco_sent_at != null;
      const warning = ciscoMayApply
        ? `Cisco accepted this transfer's call on ${toIso(t.cisco_sent_at!)}: Cisco may still apply it; check the virtual accounts in Cisco's portal`
        : null;
      const state: TransferState = input.as === 'confirmed' ? 'confirmed' : 'refused';
      this.db
        .prepare("UPDATE license_transfers SET state = ?, settled_at = ?, refusal = ?, settled_by = 'manual', settle_reason = ? WHERE id = ? AND state = 'provisional'")
        .run(state, now, input.as === 'reverted' ? `reverted by hand: ${input.reason}` : null, input.reason, t.id);
      const details = { from: t.from_va_id, to: t.to_va_id, tag: t.tag, quantity: t.quantity };
      this.events.append('license.transfer_settled', actor, t.id, t.from_va_id, { ...details, as: input.as, reason: input.reason, by: actor, ...(warning ? { warning } : {}) });
      if (input.as === 'reverted') {
        this.revert(t, now);
        this.events.append('license.transfer_reverted', actor, t.id, t.from_va_id, details);
      }
      this.refreshAlerts([{ vaId: t.from_va_id, tag: t.tag }, { vaId: t.to_va_id, tag: t.tag }]);
      return { ...this.view(this.row(t.id)!), ...(warning ? { warning } : {}) };
    })();
  }

  private revert(t: TransferRow, now: number): void {
    this.db.prepare('DELETE FROM entitlements WHERE va_id = ? AND transfer_id = ?').run(t.to_va_id, t.id);
    const lines = this.entitlements.byVa(t.from_va_id).filter((l) => l.tag === t.tag && !l.transfer_id);
    for (const p of JSON.parse(t.pieces) as TransferPiece[]) {
      const same = lines.find((l) => l.kind === p.kind && l.starts_at === p.startsAt && l.ends_at === p.endsAt);
      if (same) {
        same.quantity += p.quantity;
        this.db.prepare('UPDATE entitlements SET quantity = ? WHERE id = ?').run(same.quantity, same.id);
      } else {
        this.insertLine(t.from_va_id, t.tag, null, p, now);
      }
    }
  }

  /** Takes `quantity` from the lines in debitOrder; returns the pieces taken, line by line. */
  private debit(valid: EntitlementRow[], quantity: number): TransferPiece[] {
    const pieces: TransferPiece[] = [];
    let left = quantity;
    for (const l of [...valid].sort(debitOrder)) {
      if (left === 0) break;
      const take = Math.min(l.quantity, left);
      if (take === 0) continue;
      this.lower(l, take);
      left -= take;
      pieces.push({ displayName: l.display_name, kind: l.kind, quantity: take, startsAt: l.starts_at, endsAt: l.ends_at });
    }
    return pieces;
  }

  /** Debits lines in the order given, down to nothing; returns what could not be taken. */
  private take(lines: EntitlementRow[], quantity: number): number {
    let left = quantity;
    for (const l of lines) {
      if (left === 0) break;
      const n = Math.min(l.quantity, left);
      this.lower(l, n);
      left -= n;
    }
    return left;
  }

  /** A line debited to nothing goes: the source no longer holds it. */
  private lower(l: EntitlementRow, n: number): void {
    l.quantity -= n;
    if (l.quantity === 0) this.db.prepare('DELETE FROM entitlements WHERE id = ?').run(l.id);
    else this.db.prepare('UPDATE entitlements SET quantity = ? WHERE id = ?').run(l.quantity, l.id);
  }

  private credit(vaId: string, tag: string, transferId: string, p: TransferPiece, now: number): void {
    this.insertLine(vaId, tag, transferId, p, now);
  }

  private insertLine(vaId: string, tag: string, transferId: string | null, p: TransferPiece, now: number): void {
    this.entitlements.insert({
      id: newId('ent', now), va_id: vaId, tag, display_name: p.displayName, kind: p.kind, quantity: p.quantity,
      starts_at: p.startsAt, ends_at: p.endsAt, created_at: now, transfer_id: transferId,
    });
  }

  /**
   * 'operate' on both VAs, from the grants as they stand now: a user's roles read from the
   * store (a token keeps to the roles it was given, and to those its user still holds).
   */
  private requireOperate(p: Principal | null, vaIds: string[]): void {
    if (!p) return; // no users yet: loopback and the local socket act as admin
    let grants = p.grants;
    if (p.userId) {
      const user = this.db.prepare('SELECT status FROM users WHERE id = ?').get(p.userId) as { status: string } | undefined;
      const held = user?.status === 'active'
        ? (this.db.prepare('SELECT role, va_id FROM user_roles WHERE user_id = ?').all(p.userId) as { role: Role; va_id: string }[]).map((r) => ({ role: r.role, vaId: r.va_id || null }))
        : [];
      grants = grants.filter((g) => held.some((h) => h.role === g.role && (h.vaId === null || h.vaId === g.vaId)));
    }
    const can = (va: string) => grants.some((g) => (g.vaId === null || g.vaId === va) && allows(g.role, 'operate'));
    const missing = vaIds.filter((va) => !can(va));
    if (missing.length) {
      const names = missing.map((id) => this.accounts.repo.get(id)?.name ?? id);
      throw forbidden('transfer_needs_both_virtual_accounts', `${p.actor} may transfer licenses only between virtual accounts it may operate on both; it may not operate on ${names.join(' and ')}`, { vaIds: missing });
    }
  }

  private row(id: string): TransferRow | undefined {
    return this.db.prepare('SELECT * FROM license_transfers WHERE id = ?').get(id) as TransferRow | undefined;
  }

  view(r: TransferRow) {
    return {
      id: r.id,
      fromVaId: r.from_va_id,
      toVaId: r.to_va_id,
      tag: r.tag,
      quantity: r.quantity,
      reason: r.reason,
      state: r.state,
      lines: (JSON.parse(r.pieces) as TransferPiece[]).map((p) => ({ ...p, startsAt: toIso(p.startsAt), endsAt: toIso(p.endsAt) })),
      requestedBy: r.requested_by,
      requestedAt: toIso(r.requested_at),
      settledAt: toIso(r.settled_at),
      refusal: r.refusal,
      settledBy: r.settled_by ?? (r.settled_at != null ? 'upstream' : null),
      settleReason: r.settle_reason ?? null,
      /** When Cisco's transfer call accepted it (null: never sent to Cisco): Cisco may apply it even if reverted here. */
      ciscoAcceptedAt: toIso(r.cisco_sent_at ?? null),
    };
  }
}
