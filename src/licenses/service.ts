import { newId } from '../shared/ids.js';
import { badRequest } from '../shared/errors.js';
import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AccountService } from '../accounts/service.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { EntitlementRepository, type EntitlementKind, type EntitlementRow } from './entitlements.js';
import { Ledger, type UsageKey } from './ledger.js';
import { tagCompliance, type TagCompliance } from './compliance.js';
import { LabelRepository } from '../labels/repository.js';
import { TransferService } from './transfers.js';

export interface EntitlementLineInput {
  vaId: string;
  tag: string;
  displayName: string;
  kind: EntitlementKind;
  quantity: number;
  startsAt: number;
  endsAt: number | null;
}

export interface VaCompliance {
  vaId: string;
  vaName: string;
  status: 'in_compliance' | 'out_of_compliance';
  tags: TagCompliance[];
}

export interface Drift {
  vaId: string;
  tag: string;
  stored: { inUse: number; devices: number };
  actual: { inUse: number; devices: number };
}

export class LicenseService {
  readonly ledger: Ledger;
  readonly entitlements: EntitlementRepository;
  readonly transfers: TransferService;
  private vaUsageStmt;
  private oneUsageStmt;
  private labels: LabelRepository;

  constructor(
    private db: Db,
    private clock: Clock, // trusted time: line validity never runs backwards
    private accounts: AccountService,
    private alerts: AlertService,
    private events: EventService,
  ) {
    this.ledger = new Ledger(db);
    this.entitlements = new EntitlementRepository(db);
    this.labels = new LabelRepository(db);
    this.transfers = new TransferService(db, clock, accounts, alerts, events, this.entitlements, (keys) => this.refreshAlerts(keys));
    this.vaUsageStmt = db.prepare('SELECT tag, in_use, devices FROM va_usage WHERE va_id = ?');
    this.oneUsageStmt = db.prepare('SELECT in_use, devices FROM va_usage WHERE va_id = ? AND tag = ?');
  }

  /**
   * Adds an entitlement line. Lines arrive from the upstream (a later issue); until then this
   * service method is how they are seeded, and there is deliberately no HTTP route for it.
   */
  addLine(input: EntitlementLineInput, actor: string): EntitlementRow {
    if (input.endsAt !== null && input.endsAt <= input.startsAt) {
      throw badRequest('invalid_period', 'an entitlement line must end after it starts', { tag: input.tag });
    }
    return this.db.transaction(() => {
      const va = this.accounts.require(input.vaId);
      const now = this.clock.now();
      const row: EntitlementRow = {
        id: newId('ent', now),
        va_id: va.id,
        tag: input.tag,
        display_name: input.displayName,
        kind: input.kind,
        quantity: input.quantity,
        starts_at: input.startsAt,
        ends_at: input.endsAt,
        created_at: now,
      };
      this.entitlements.insert(row);
      this.events.append('entitlement.added', actor, row.id, va.id, { tag: row.tag, kind: row.kind, quantity: row.quantity });
      this.refreshAlerts([{ vaId: va.id, tag: row.tag }]);
      return row;
    })();
  }

  /** A VA's lines; with labelIds, those carrying every one of them. */
  lines(vaId: string, labelIds?: string[]) {
    const va = this.accounts.require(vaId);
    const rows = labelIds?.length ? this.entitlements.byVa(va.id).filter((l) => this.labels.lineCarries(l.id, labelIds)) : this.entitlements.byVa(va.id);
    return rows.map((l) => ({
      id: l.id,
      tag: l.tag,
      displayName: l.display_name,
      kind: l.kind,
      quantity: l.quantity,
      startsAt: toIso(l.starts_at),
      endsAt: toIso(l.ends_at),
      labels: this.labels.ofLine(l.id),
    }));
  }

  /** Costs one indexed read of the VA's usage rows and its lines, whatever the number of devices. */
  compliance(vaId: string): VaCompliance {
    const va = this.accounts.require(vaId);
    const now = this.clock.now();
    const usage = this.vaUsageStmt.all(va.id) as { tag: string; in_use: number; devices: number }[];
    const lines = groupBy(this.entitlements.byVa(va.id), (l) => l.tag);
    const tags = new Set([...usage.map((u) => u.tag), ...lines.keys()]);
    const byTag = new Map(usage.map((u) => [u.tag, u]));
    const result = [...tags].sort().map((tag) => {
      const u = byTag.get(tag);
      return tagCompliance(tag, u?.in_use ?? 0, u?.devices ?? 0, lines.get(tag) ?? [], now);
    });
    return {
      vaId: va.id,
      vaName: va.name,
      status: result.every((t) => t.status === 'in_compliance') ? 'in_compliance' : 'out_of_compliance',
      tags: result,
    };
  }

  complianceAll(): VaCompliance[] {
    // The rows alone: the VA list with device counts would count every device (0.2 s at 1M).
    return this.accounts.repo.list().map((va) => this.compliance(va.id));
  }

  one(key: UsageKey): TagCompliance {
    const u = this.oneUsageStmt.get(key.vaId, key.tag) as { in_use: number; devices: number } | undefined;
    const lines = this.entitlements.byVa(key.vaId).filter((l) => l.tag === key.tag);
    return tagCompliance(key.tag, u?.in_use ?? 0, u?.devices ?? 0, lines, this.clock.now());
  }

  /** Raises or clears the shortage alert of each (VA, tag) whose usage or lines just changed. */
  refreshAlerts(keys: Iterable<UsageKey>): void {
    const seen = new Set<string>();
    for (const k of keys) {
      const id = `${k.vaId}/${k.tag}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const c = this.one(k);
      if (c.status === 'in_compliance') this.alerts.clear('shortage', id);
      else this.alerts.raise('shortage', shortageAlert(id, k.vaId, c));
    }
  }

  /** Scheduled: re-evaluates every (VA, tag), since lines expire with time alone. */
  evaluateAlerts(): void {
    const out = [];
    for (const va of this.complianceAll()) {
      for (const t of va.tags) if (t.status !== 'in_compliance') out.push(shortageAlert(`${va.vaId}/${t.tag}`, va.vaId, t));
    }
    this.alerts.reconcile('shortage', out);
  }

  /**
   * Rebuilds the in-use counters from the per-device current usage and reports where the
   * stored counters had drifted. Drift means a bug; the rebuild repairs it.
   */
  verify(actor: string): { checked: number; drift: Drift[] } {
    return this.db.transaction(() => {
      const actual = this.ledger.recompute();
      const stored = this.ledger.stored();
      const zero = { inUse: 0, devices: 0 };
      const drift: Drift[] = [];
      for (const key of new Set([...actual.keys(), ...stored.keys()])) {
        const a = actual.get(key) ?? zero;
        const s = stored.get(key) ?? zero;
        if (a.inUse !== s.inUse || a.devices !== s.devices) {
          const [vaId, tag] = key.split('\u0000') as [string, string];
          drift.push({ vaId, tag, stored: s, actual: a });
        }
      }
      if (drift.length) {
        this.ledger.replaceAll(actual);
        this.events.append('compliance.repaired', actor, null, null, { drift: drift.length });
        this.refreshAlerts(drift);
      }
      return { checked: actual.size, drift };
    })();
  }
}

function shortageAlert(subject: string, vaId: string, c: TagCompliance) {
  const what =
    c.status === 'shortage'
      ? `${c.inUse} in use, ${c.owned} owned`
      : c.status === 'expired'
        ? `${c.inUse} in use, every line has expired`
        : `${c.inUse} in use, none owned`;
  return {
    subject,
    severity: 'critical' as const,
    message: `${c.displayName}: ${c.status.replace('_', ' ')} (${what})`,
    details: { vaId, tag: c.tag, status: c.status, inUse: c.inUse, owned: c.owned },
  };
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return m;
}
