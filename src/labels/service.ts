import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import { badRequest, conflict, forbidden, notFound } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import type { DeviceRepository, DeviceFilter } from '../devices/repository.js';
import { LabelRepository, nameKey, type LabelRow } from './repository.js';

export interface Label {
  id: string;
  name: string;
  colour: string;
  description: string;
  /** Devices and entitlement lines carrying it, among those the caller may see. */
  devices: number;
  lines: number;
  createdAt: string;
  updatedAt: string;
}

export interface LabelInput {
  name: string;
  colour: string;
  description?: string | undefined;
}

/** The device list's filters, as a bulk change takes them (no paging, no sort). */
export type DeviceSelectionFilter = Omit<DeviceFilter, 'limit' | 'after' | 'sort' | 'order' | 'vaIds' | 'labelIds'> & { label?: string[] | undefined };

/** What a change applies to: exactly one of these. */
export interface LabelTargets {
  devices?: string[] | undefined;
  deviceFilter?: DeviceSelectionFilter | undefined;
  lines?: string[] | undefined;
  lineFilter?: { vaId?: string | undefined; tag?: string | undefined } | undefined;
}

/** The VAs a caller may change: null, every VA. */
export type Scope = string[] | null;

export interface LabelChange {
  label: string;
  /** 'devices' or 'lines'. */
  target: 'devices' | 'lines';
  /** How many objects now carry (attach) or no longer carry (detach) the label; those that already did (did not) are not counted. */
  changed: number;
  byVa: Record<string, number>;
}

/**
 * Labels are collector-wide (one name means one thing in every VA), their attachments are per
 * object and so per VA. Defining a label (create, rename, recolour, delete) is a collector-wide
 * change; attaching and detaching are changes to the VA's objects, checked against the caller's
 * VAs in the transaction that writes.
 */
export class LabelService {
  readonly repo: LabelRepository;
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private accounts: AccountService,
    private devices: DeviceRepository,
  ) {
    this.repo = new LabelRepository(db);
  }

  list(scope: Scope): Label[] {
    return this.repo.list().map((r) => this.toLabel(r, scope));
  }

  get(nameOrId: string, scope: Scope): Label {
    return this.toLabel(this.require(nameOrId), scope);
  }

  create(input: LabelInput, actor: string): Label {
    return this.db.transaction(() => {
      const key = nameKey(input.name);
      if (this.repo.byKey(key)) throw conflict('label_exists', `name: a label named ${input.name} already exists (names are compared without case)`, { field: 'name' });
      const now = this.clock.now();
      const row: LabelRow = {
        id: newId('lbl', now), name: input.name, name_key: key, colour: input.colour.toLowerCase(), description: input.description ?? '',
        created_at: now, updated_at: now,
      };
      this.repo.insert(row);
      this.events.append('label.created', actor, row.id, null, { name: row.name, colour: row.colour });
      return this.toLabel(row, null);
    })();
  }

  update(nameOrId: string, patch: Partial<LabelInput>, actor: string): Label {
    return this.db.transaction(() => {
      const old = this.require(nameOrId);
      const next: LabelRow = {
        ...old,
        ...(patch.name !== undefined ? { name: patch.name, name_key: nameKey(patch.name) } : {}),
        ...(patch.colour !== undefined ? { colour: patch.colour.toLowerCase() } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        updated_at: this.clock.now(),
      };
      const clash = this.repo.byKey(next.name_key);
      if (clash && clash.id !== old.id) throw conflict('label_exists', `name: a label named ${clash.name} already exists (names are compared without case)`, { field: 'name' });
      this.repo.update(next);
      const changed: Record<string, { from: string; to: string }> = {};
      for (const k of ['name', 'colour', 'description'] as const) if (old[k] !== next[k]) changed[k] = { from: old[k], to: next[k] };
      this.events.append('label.updated', actor, old.id, null, { name: next.name, changed });
      return this.toLabel(next, null);
    })();
  }

  /** Deleting a label detaches it from every device and line, in the same transaction (the foreign keys cascade). */
  remove(nameOrId: string, actor: string): { name: string; detached: { devices: number; lines: number } } {
    return this.db.transaction(() => {
      const r = this.require(nameOrId);
      const { devices, lines } = this.repo.counts(r.id, null);
      this.repo.delete(r.id);
      this.events.append('label.deleted', actor, r.id, null, { name: r.name, devices, lines });
      return { name: r.name, detached: { devices, lines } };
    })();
  }

  attach(nameOrId: string, targets: LabelTargets, scope: Scope, actor: string): LabelChange {
    return this.change('attach', nameOrId, targets, scope, actor);
  }

  detach(nameOrId: string, targets: LabelTargets, scope: Scope, actor: string): LabelChange {
    return this.change('detach', nameOrId, targets, scope, actor);
  }

  /** The label ids a list's `label` filter names, every one of which an item must carry. */
  idsOf(names: string[] | undefined): string[] | undefined {
    if (!names?.length) return undefined;
    return names.map((n) => {
      const r = this.repo.find(n);
      if (!r) throw badRequest('unknown_label', `label: no label named ${n} (outpost label list shows them)`, { field: 'label', label: n });
      return r.id;
    });
  }

  /**
   * One transaction: the objects are selected, checked against the caller's VAs and changed
   * together, so a device moved to another VA meanwhile is judged where it is now.
   */
  private change(op: 'attach' | 'detach', nameOrId: string, t: LabelTargets, scope: Scope, actor: string): LabelChange {
    const given = (['devices', 'deviceFilter', 'lines', 'lineFilter'] as const).filter((k) => t[k] !== undefined);
    if (given.length !== 1) {
      throw badRequest('invalid_target', `body: name exactly one of devices, deviceFilter, lines, lineFilter${given.length ? ` (got ${given.join(', ')})` : ''}`, { field: 'body' });
    }
    return this.db.transaction(() => {
      const label = this.require(nameOrId);
      const target = t.devices || t.deviceFilter ? ('devices' as const) : ('lines' as const);
      const select = t.devices
        ? this.byIds('devices', t.devices, scope)
        : t.lines
          ? this.byIds('entitlements', t.lines, scope)
          : t.deviceFilter
            ? this.deviceSelection(t.deviceFilter, scope)
            : this.lineSelection(t.lineFilter!, scope);
      const byVa =
        target === 'devices'
          ? op === 'attach' ? this.repo.attachDevices(label.id, select) : this.repo.detachDevices(label.id, select)
          : op === 'attach' ? this.repo.attachLines(label.id, select) : this.repo.detachLines(label.id, select);
      const by = t.devices || t.lines ? 'ids' : 'filter';
      const filter = t.deviceFilter ?? t.lineFilter;
      let changed = 0;
      for (const [vaId, n] of byVa) {
        changed += n;
        this.events.append(op === 'attach' ? 'label.attached' : 'label.detached', actor, label.id, vaId, {
          name: label.name, target, count: n, by, ...(filter ? { filter } : {}),
        });
      }
      return { label: label.name, target, changed, byVa: Object.fromEntries(byVa) };
    })();
  }

  private byIds(table: 'devices' | 'entitlements', ids: string[], scope: Scope): { sql: string; args: unknown[] } {
    const what = table === 'devices' ? 'device' : 'entitlement line';
    const field = table === 'devices' ? 'devices' : 'lines';
    const vaOf = this.db.prepare(`SELECT va_id FROM ${table} WHERE id = ?`).pluck();
    for (const id of ids) {
      const va = vaOf.get(id) as string | undefined;
      if (va === undefined) throw notFound(what, id);
      if (scope && !scope.includes(va)) throw forbidden('outside_your_virtual_accounts', `${field}: ${what} ${id} is in a virtual account you have no role on`, { field });
    }
    return { sql: `SELECT id FROM ${table} WHERE id IN (SELECT value FROM json_each(?))`, args: [JSON.stringify(ids)] };
  }

  private scopedVa(vaId: string | undefined, scope: Scope, field: string): { vaId?: string; vaIds?: string[] } {
    if (vaId !== undefined) {
      let id: string;
      try {
        id = this.accounts.require(vaId).id;
      } catch {
        // A VA the caller cannot see is answered as not permitted, as the routes' scopes do.
        if (scope) throw forbidden('outside_your_virtual_accounts', `${field}.vaId: you may change only the virtual accounts you have a role on`, { field: `${field}.vaId` });
        throw badRequest('unknown_virtual_account', `${field}.vaId: no virtual account ${vaId}`, { field: `${field}.vaId` });
      }
      if (scope && !scope.includes(id)) throw forbidden('outside_your_virtual_accounts', `${field}.vaId: you may change only the virtual accounts you have a role on`, { field: `${field}.vaId` });
      return { vaId: id };
    }
    return scope ? { vaIds: scope } : {};
  }

  private deviceSelection(f: DeviceSelectionFilter, scope: Scope): { sql: string; args: unknown[] } {
    const { label, ...rest } = f;
    return this.devices.matching({ ...rest, ...this.scopedVa(f.vaId, scope, 'deviceFilter'), labelIds: this.idsOf(label) });
  }

  private lineSelection(f: { vaId?: string | undefined; tag?: string | undefined }, scope: Scope): { sql: string; args: unknown[] } {
    const va = this.scopedVa(f.vaId, scope, 'lineFilter');
    const where: string[] = [];
    const args: unknown[] = [];
    if (va.vaId) (where.push('va_id = ?'), args.push(va.vaId));
    if (va.vaIds) (where.push('va_id IN (SELECT value FROM json_each(?))'), args.push(JSON.stringify(va.vaIds)));
    if (f.tag) (where.push('tag = ?'), args.push(f.tag));
    return { sql: `SELECT id FROM entitlements${where.length ? ' WHERE ' + where.join(' AND ') : ''}`, args };
  }

  private require(nameOrId: string): LabelRow {
    const r = this.repo.find(nameOrId);
    if (!r) throw notFound('label', nameOrId);
    return r;
  }

  private toLabel(r: LabelRow, scope: Scope): Label {
    const { devices, lines } = this.repo.counts(r.id, scope);
    return {
      id: r.id, name: r.name, colour: r.colour, description: r.description, devices, lines,
      createdAt: toIso(r.created_at)!, updatedAt: toIso(r.updated_at)!,
    };
  }
}
