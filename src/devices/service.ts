import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import { conflict, notFound } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AlertService } from '../alerts/service.js';
import type { AccountService } from '../accounts/service.js';
import type { TokenService } from '../tokens/service.js';
import type { LicenseService } from '../licenses/service.js';
import { evaluateStaleness } from './staleness.js';
import { DeviceRepository, type DeviceFilter, type DeviceRow, type DeviceStatus } from './repository.js';

export interface Device {
  id: string;
  vaId: string;
  udi: { pid: string; serial: string };
  udis: string[];
  hostname: string;
  softwareVersion: string;
  status: DeviceStatus;
  source: 'registered' | 'rum';
  publicKey: string | null;
  pendingRekey: { publicKey: string; since: string } | null;
  registeredAt: string;
  lastSeenAt: string | null;
  lastSeq: number | null;
}

export interface RegistrationInput {
  token: string;
  udi: { pid: string; serial: string };
  hostname: string;
  softwareVersion: string;
  publicKey: string; // base64 raw ed25519, proven by the request's signature
}

export type RegistrationOutcome = 'registered' | 're_registered' | 'pending_rekey';

export class DeviceService {
  readonly repo: DeviceRepository;
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private alerts: AlertService,
    private accounts: AccountService,
    private tokens: TokenService,
    private licenses: LicenseService,
    private staleAfterDays: number,
    private reportingIntervalDays: () => number,
  ) {
    this.repo = new DeviceRepository(db);
  }

  /**
   * Registration with a token. A token admits new devices; it never hands over an existing
   * one: a known UDI presenting a different key gets a pending re-key for an operator to
   * decide, and a device's VA never changes by registration.
   */
  register(input: RegistrationInput): { device: DeviceRow; outcome: RegistrationOutcome } {
    return this.db.transaction(() => {
      const token = this.tokens.consume(input.token);
      const now = this.clock.now();
      const known = this.repo.byUdi(input.udi.pid, input.udi.serial);
      const facts = { hostname: input.hostname, software_version: input.softwareVersion };
      if (!known) {
        const row: DeviceRow = {
          id: newId('dev', now),
          va_id: token.va_id,
          udi_pid: input.udi.pid,
          udi_serial: input.udi.serial,
          ...facts,
          public_key: input.publicKey,
          pending_public_key: null,
          pending_since: null,
          status: 'active',
          source: 'registered',
          registered_at: now,
          last_seen_at: now,
          last_seq: null,
        };
        this.repo.insert(row);
        this.events.append('device.registered', `token:${token.id}`, row.id, row.va_id, { udi: udiText(row), hostname: row.hostname });
        return { device: row, outcome: 'registered' as const };
      }
      if (known.public_key === null || known.public_key === input.publicKey) {
        // Same key (a device that lost its state), or a device known only from RUM files taking its first key.
        const reactivate = known.status !== 'active';
        this.repo.update(known.id, { ...facts, public_key: input.publicKey, source: 'registered', status: 'active', last_seen_at: now });
        if (reactivate) this.licenses.refreshAlerts(this.licenses.ledger.restore(known.id, known.va_id));
        this.events.append('device.re_registered', `token:${token.id}`, known.id, known.va_id, { udi: udiText(known) });
        return { device: this.repo.get(known.id)!, outcome: 're_registered' as const };
      }
      this.repo.update(known.id, { pending_public_key: input.publicKey, pending_since: now });
      this.events.append('device.rekey_requested', `token:${token.id}`, known.id, known.va_id, {
        udi: udiText(known),
        hostname: input.hostname,
      });
      this.raiseRekeyAlert(known);
      return { device: this.repo.get(known.id)!, outcome: 'pending_rekey' as const };
    })();
  }

  /** A re-key signed by the device's current key takes effect at once. */
  rekeySigned(deviceId: string, newKey: string): DeviceRow {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      this.repo.update(d.id, { public_key: newKey, pending_public_key: null, pending_since: null });
      this.alerts.clear('rekey_pending', d.id);
      this.events.append('device.rekeyed', `device:${d.id}`, d.id, d.va_id, { by: 'current_key' });
      return this.repo.get(d.id)!;
    })();
  }

  decideRekey(deviceId: string, approve: boolean, actor: string): Device {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      if (!d.pending_public_key) throw conflict('no_pending_rekey', `device ${d.id} has no pending re-key`, { device: d.id });
      this.repo.update(d.id, {
        ...(approve ? { public_key: d.pending_public_key } : {}),
        pending_public_key: null,
        pending_since: null,
      });
      this.alerts.clear('rekey_pending', d.id);
      this.events.append(approve ? 'device.rekeyed' : 'device.rekey_refused', actor, d.id, d.va_id, { by: 'operator' });
      return this.get(d.id);
    })();
  }

  move(deviceId: string, vaId: string, actor: string): Device {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      const va = this.accounts.require(vaId);
      if (va.id === d.va_id) throw conflict('same_va', `device ${d.id} is already in ${va.name}`, { device: d.id });
      if (d.status === 'active') {
        const keys = [...this.licenses.ledger.release(d.id, d.va_id), ...this.licenses.ledger.restore(d.id, va.id)];
        this.repo.update(d.id, { va_id: va.id });
        this.licenses.refreshAlerts(keys);
      } else {
        this.repo.update(d.id, { va_id: va.id });
      }
      this.events.append('device.moved', actor, d.id, va.id, { from: d.va_id, to: va.id });
      return this.get(d.id);
    })();
  }

  deregister(deviceId: string, actor: string): Device {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      if (d.status === 'deregistered') throw conflict('already_deregistered', `device ${d.id} is already deregistered`, { device: d.id });
      const keys = d.status === 'active' ? this.licenses.ledger.release(d.id, d.va_id) : [];
      this.licenses.ledger.forget(d.id);
      this.repo.update(d.id, { status: 'deregistered', pending_public_key: null, pending_since: null });
      for (const kind of ['rekey_pending', 'device_silent', 'device_stale'] as const) this.alerts.clear(kind, d.id);
      this.licenses.refreshAlerts(keys);
      this.events.append('device.deregistered', actor, d.id, d.va_id, { udi: udiText(d) });
      return this.get(d.id);
    })();
  }

  /**
   * Scheduled: devices silent past the stale age are marked stale and release their licenses;
   * devices silent past the policy's reporting interval raise a "silent" alert (see staleness.ts).
   * A small store is evaluated before this returns; a large one in slices, the promise
   * settling when the last is done.
   */
  evaluate(): Promise<{ staled: number }> {
    return evaluateStaleness({
      db: this.db, clock: this.clock, events: this.events, alerts: this.alerts, licenses: this.licenses, repo: this.repo,
      staleAfterDays: this.staleAfterDays, reportingIntervalDays: this.reportingIntervalDays(), rekeyAlert,
    });
  }

  list(f: DeviceFilter): { items: Device[]; nextCursor: string | null } {
    const rows = this.repo.list(f);
    const last = rows[rows.length - 1];
    return { items: rows.map((r) => this.toDevice(r)), nextCursor: rows.length === f.limit && last ? last.id : null };
  }

  get(id: string): Device {
    return this.toDevice(this.requireRow(id));
  }

  requireRow(id: string): DeviceRow {
    const d = this.repo.get(id);
    if (!d) throw notFound('device', id);
    return d;
  }

  private raiseRekeyAlert(d: DeviceRow): void {
    this.alerts.raise('rekey_pending', rekeyAlert(d));
  }

  private toDevice(r: DeviceRow): Device {
    return {
      id: r.id,
      vaId: r.va_id,
      udi: { pid: r.udi_pid, serial: r.udi_serial },
      udis: this.repo.udis(r.id),
      hostname: r.hostname,
      softwareVersion: r.software_version,
      status: r.status,
      source: r.source,
      publicKey: r.public_key,
      pendingRekey: r.pending_public_key ? { publicKey: r.pending_public_key, since: toIso(r.pending_since)! } : null,
      registeredAt: toIso(r.registered_at)!,
      lastSeenAt: toIso(r.last_seen_at),
      lastSeq: r.last_seq,
    };
  }
}

export const udiText = (d: { udi_pid: string; udi_serial: string }) => `${d.udi_pid}:${d.udi_serial}`;

function rekeyAlert(d: DeviceRow) {
  return {
    subject: d.id,
    severity: 'warning' as const,
    message: `device ${udiText(d)} asks to change its key; approve or refuse it`,
    details: { vaId: d.va_id, since: toIso(d.pending_since) },
  };
}
