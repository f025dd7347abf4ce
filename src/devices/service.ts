import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import { badRequest, conflict, notFound, unauthorized } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AlertService } from '../alerts/service.js';
import type { AccountService } from '../accounts/service.js';
import type { TokenService } from '../tokens/service.js';
import type { LicenseService } from '../licenses/service.js';
import { evaluateStaleness } from './staleness.js';
import { LabelRepository, type LabelRef } from '../labels/repository.js';
import { DeviceRepository, sortKeyOf, type DeviceCursor, type DeviceFilter, type DeviceRow, type DeviceSort, type DeviceStatus, type PendingReason } from './repository.js';

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
  pendingRekey: { publicKey: string; since: string; reason: PendingReason } | null;
  registeredAt: string;
  lastSeenAt: string | null;
  lastSeq: number | null;
  /** The local labels it carries, by name. */
  labels: LabelRef[];
}

/** What a device has in use now, per tag: its latest measurement, and the report that carried it. */
export interface DeviceUsage {
  deviceId: string;
  vaId: string;
  /** Whether this usage counts in its VA's in-use now: only an active device's does (stale and deregistered release theirs). */
  counted: boolean;
  items: { tag: string; count: number; periodEnd: string; reportId: string | null }[];
}

export interface RegistrationInput {
  token: string;
  udi: { pid: string; serial: string };
  hostname: string;
  softwareVersion: string;
  publicKey: string; // base64 raw ed25519, proven by the request's signature
}

export type RegistrationOutcome = 'registered' | 're_registered' | 'pending_rekey' | 'pending_approval';

export class DeviceService {
  readonly repo: DeviceRepository;
  private labels: LabelRepository;
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
    this.labels = new LabelRepository(db);
  }

  /**
   * Registration with a token. A token admits new devices into its own VA; it never hands
   * over an existing one. The same device (same key) registering again keeps its id and VA.
   * Everything else that concerns a known UDI waits for an operator, as a re-key does: a
   * different key, a key for a device known only from RUM files (keyless), a deregistered
   * device coming back. A device's VA never changes by registration.
   *
   * `signatureHash` identifies the signed request: a captured registration replayed within
   * the signature window is refused before anything is counted.
   */
  register(input: RegistrationInput, signatureHash: string, replayHorizonMs: number): { device: DeviceRow; outcome: RegistrationOutcome } {
    return this.db.transaction(() => {
      const now = this.clock.now();
      if (!this.repo.firstRegistration(signatureHash, now, replayHorizonMs)) {
        throw conflict('registration_replayed', 'this exact registration request was already received; a device signs each attempt with a new timestamp');
      }
      const token = this.tokens.consume(input.token);
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
      if (known.public_key === input.publicKey && known.status !== 'deregistered') {
        // The same device that lost its state: only the key's holder can sign this.
        this.repo.update(known.id, { ...facts, last_seen_at: now });
        if (known.status === 'stale' && this.repo.reactivateStale(known.id)) {
          this.licenses.refreshAlerts(this.licenses.ledger.restore(known.id, known.va_id));
        }
        this.events.append('device.re_registered', `token:${token.id}`, known.id, known.va_id, { udi: udiText(known) });
        return { device: this.repo.get(known.id)!, outcome: 're_registered' as const };
      }
      const reason: PendingReason = known.status === 'deregistered' ? 'revive' : known.public_key === null ? 'claim_keyless' : 'new_key';
      this.repo.update(known.id, { pending_public_key: input.publicKey, pending_since: now, pending_reason: reason });
      this.events.append('device.rekey_requested', `token:${token.id}`, known.id, known.va_id, {
        udi: udiText(known),
        hostname: input.hostname,
        reason,
        tokenVaId: token.va_id,
      });
      const pending = this.repo.get(known.id)!;
      this.raiseRekeyAlert(pending);
      return { device: pending, outcome: reason === 'new_key' ? ('pending_rekey' as const) : ('pending_approval' as const) };
    })();
  }

  /** Refuses a registration whose token would be refused, before its signature is checked. */
  checkToken(secret: unknown): void {
    this.tokens.check(secret);
  }

  /**
   * A re-key signed by the device's current key takes effect at once, provided that key is
   * still current and the device still registered when the change is written: both can
   * change while the request's signatures are checked.
   */
  rekeySigned(deviceId: string, signedWith: string, newKey: string): DeviceRow {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      if (d.status === 'deregistered') throw unauthorized('unknown_device', `device ${deviceId} is not registered`);
      if (d.public_key !== signedWith) {
        throw unauthorized('key_changed', `the key of device ${deviceId} changed while the request was checked; sign again with the current key`);
      }
      this.repo.update(d.id, { public_key: newKey, pending_public_key: null, pending_since: null });
      this.alerts.clear('rekey_pending', d.id);
      this.events.append('device.rekeyed', `device:${d.id}`, d.id, d.va_id, { by: 'current_key' });
      return this.repo.get(d.id)!;
    })();
  }

  /**
   * An operator's decision on a pending key. Approving a claim of a keyless device makes it a
   * registered device; approving a revival makes a deregistered device active again (in its
   * own VA: its usage was released when it was deregistered and counts from its next report).
   */
  decideRekey(deviceId: string, approve: boolean, actor: string): Device {
    return this.db.transaction(() => {
      const d = this.requireRow(deviceId);
      if (!d.pending_public_key) throw conflict('no_pending_rekey', `device ${d.id} has no pending re-key`, { device: d.id });
      const reason = d.pending_reason ?? 'new_key';
      this.repo.update(d.id, {
        ...(approve ? { public_key: d.pending_public_key, source: 'registered' as const } : {}),
        ...(approve && d.status === 'deregistered' ? { status: 'active' as const, last_seen_at: this.clock.now() } : {}),
        pending_public_key: null,
        pending_since: null,
        pending_reason: null,
      });
      this.alerts.clear('rekey_pending', d.id);
      this.events.append(approve ? 'device.rekeyed' : 'device.rekey_refused', actor, d.id, d.va_id, { by: 'operator', reason });
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
      this.alerts.clear('rekey_pending', d.id); // stale and silent alerts are per VA, reconciled by the evaluation
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

  list(f: Omit<DeviceFilter, 'after'> & { cursor?: string | undefined }): { items: Device[]; nextCursor: string | null } {
    const sort = f.sort ?? 'id';
    const rows = this.repo.list({ ...f, after: f.cursor === undefined ? undefined : decodeCursor(f.cursor, sort) });
    const last = rows[rows.length - 1];
    return { items: rows.map((r) => this.toDevice(r)), nextCursor: rows.length === f.limit && last ? encodeCursor(last, sort) : null };
  }

  get(id: string): Device {
    return this.toDevice(this.requireRow(id));
  }

  usage(id: string): DeviceUsage {
    const d = this.requireRow(id);
    // A pruned report leaves its measurement in use: the report's id is then unknown.
    const rows = this.db
      .prepare(
        `SELECT u.tag, u.count, u.period_end, r.report_id FROM device_usage u LEFT JOIN reports r ON r.id = u.report_pk
         WHERE u.device_id = ? ORDER BY u.tag`,
      )
      .all(d.id) as { tag: string; count: number; period_end: number; report_id: string | null }[];
    return {
      deviceId: d.id,
      vaId: d.va_id,
      counted: d.status === 'active',
      items: rows.map((r) => ({ tag: r.tag, count: r.count, periodEnd: toIso(r.period_end)!, reportId: r.report_id })),
    };
  }

  requireRow(id: string): DeviceRow {
    const d = this.repo.get(id);
    if (!d) throw notFound('device', id);
    return d;
  }

  private raiseRekeyAlert(d: DeviceRow): void {
    this.alerts.raise('rekey_pending', rekeyAlert(d));
  }

  toDevice(r: DeviceRow): Device {
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
      pendingRekey: r.pending_public_key
        ? { publicKey: r.pending_public_key, since: toIso(r.pending_since)!, reason: r.pending_reason ?? 'new_key' }
        : null,
      registeredAt: toIso(r.registered_at)!,
      lastSeenAt: toIso(r.last_seen_at),
      lastSeq: r.last_seq,
      labels: this.labels.ofDevice(r.id),
    };
  }
}

export const udiText = (d: { udi_pid: string; udi_serial: string }) => `${d.udi_pid}:${d.udi_serial}`;

const PENDING_TEXT: Record<PendingReason, string> = {
  new_key: 'asks to change its key',
  claim_keyless: 'is known from RUM files and asks to register with a key',
  revive: 'is deregistered and asks to register again',
};

function rekeyAlert(d: DeviceRow) {
  const reason = d.pending_reason ?? 'new_key';
  return {
    subject: d.id,
    severity: 'warning' as const,
    message: `device ${udiText(d)} ${PENDING_TEXT[reason]}; approve or refuse it`,
    details: { vaId: d.va_id, since: toIso(d.pending_since), reason },
  };
}

/**
 * In id order the cursor is the last id, as it always was (scripts keep working); in another
 * order it also carries the last sort key, opaque to the caller.
 */
function encodeCursor(r: DeviceRow, sort: DeviceSort): string {
  return sort === 'id' ? r.id : Buffer.from(JSON.stringify([sortKeyOf(r, sort), r.id])).toString('base64url');
}

function decodeCursor(cursor: string, sort: DeviceSort): DeviceCursor {
  if (sort === 'id') return { key: cursor, id: cursor };
  const bad = () => badRequest('invalid_cursor', `cursor: not a cursor of a device list sorted by ${sort} (pass back the nextCursor that list returned)`, { sort });
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const numeric = sort === 'registered' || sort === 'lastSeen';
  if (!Array.isArray(v) || v.length !== 2 || typeof v[1] !== 'string' || typeof v[0] !== (numeric ? 'number' : 'string')) throw bad();
  return { key: v[0] as string | number, id: v[1] };
}
