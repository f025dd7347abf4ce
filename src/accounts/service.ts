import { randomUUID } from 'node:crypto';
import { conflict, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import { AccountRepository, type VaRow } from './repository.js';

export interface VirtualAccount {
  id: string;
  name: string;
  description: string;
  origin: 'local' | 'upstream';
  confirmed: boolean;
  devices: number;
  createdAt: string;
  updatedAt: string;
}

export interface Account {
  id: string;
  name: string;
  virtualAccounts: number;
}

export const DEFAULT_VA_NAME = 'Default';

/**
 * The one local account and its virtual accounts. A VA's id never changes with its name.
 * The upstream owns the VA list: a VA made here is 'local' until the upstream confirms it.
 */
export class AccountService {
  readonly repo: AccountRepository;
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
  ) {
    this.repo = new AccountRepository(db);
  }

  /** First start: the local account and a default VA, so a fresh collector can register devices at once. */
  ensureInitialised(): void {
    this.db.transaction(() => {
      if (this.repo.meta('account_id')) return;
      const id = `acc_${randomUUID()}`;
      this.repo.setMeta('account_id', id);
      this.repo.setMeta('account_name', 'Local account');
      this.events.append('account.created', 'system', id, null, {});
      this.createVa({ name: DEFAULT_VA_NAME, description: 'Created at first start' }, 'system');
    })();
  }

  account(): Account {
    return {
      id: this.repo.meta('account_id') ?? '',
      name: this.repo.meta('account_name') ?? '',
      virtualAccounts: this.repo.list().length,
    };
  }

  list(): VirtualAccount[] {
    const counts = this.repo.deviceCounts();
    return this.repo.list().map((r) => toVa(r, counts.get(r.id) ?? 0));
  }

  get(id: string): VirtualAccount {
    const r = this.require(id);
    return toVa(r, this.repo.deviceCounts().get(r.id) ?? 0);
  }

  require(id: string): VaRow {
    const r = this.repo.get(id) ?? this.repo.byName(id);
    if (!r) throw notFound('virtual account', id);
    return r;
  }

  createVa(input: { name: string; description?: string | undefined }, actor: string): VirtualAccount {
    return this.db.transaction(() => {
      if (this.repo.byName(input.name)) {
        throw conflict('name_taken', `a virtual account named "${input.name}" already exists`, { name: input.name });
      }
      const now = this.clock.now();
      const row: VaRow = {
        id: newId('va', now),
        name: input.name,
        description: input.description ?? '',
        origin: 'local',
        created_at: now,
        updated_at: now,
      };
      this.repo.insert(row);
      this.events.append('va.created', actor, row.id, row.id, { name: row.name });
      return toVa(row, 0);
    })();
  }

  updateVa(id: string, input: { name?: string | undefined; description?: string | undefined }, actor: string): VirtualAccount {
    return this.db.transaction(() => {
      const r = this.require(id);
      const name = input.name ?? r.name;
      const other = this.repo.byName(name);
      if (other && other.id !== r.id) {
        throw conflict('name_taken', `a virtual account named "${name}" already exists`, { name });
      }
      this.repo.update(r.id, name, input.description ?? r.description, this.clock.now());
      if (name !== r.name) this.events.append('va.renamed', actor, r.id, r.id, { from: r.name, to: name });
      return this.get(r.id);
    })();
  }

  deleteVa(id: string, actor: string): void {
    this.db.transaction(() => {
      const r = this.require(id);
      const c = this.repo.contents(r.id, this.clock.now());
      if (c.devices || c.liveTokens || c.entitlements) {
        throw conflict('not_empty', `virtual account "${r.name}" is not empty`, { ...c });
      }
      this.repo.deleteDeadTokens(r.id);
      this.repo.delete(r.id);
      this.events.append('va.deleted', actor, r.id, r.id, { name: r.name });
    })();
  }
}

function toVa(r: VaRow, devices: number): VirtualAccount {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    origin: r.origin,
    confirmed: r.origin === 'upstream',
    devices,
    createdAt: toIso(r.created_at)!,
    updatedAt: toIso(r.updated_at)!,
  };
}
