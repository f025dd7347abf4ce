import { randomInt } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import type { PolledDeviceService } from '../cisco/polled-devices.js';
import type { Logger } from '../shared/logger.js';
import { AppError, badRequest, conflict } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { printable } from '../sync/reply.js';
import { sleep } from '../sync/failure.js';
import { TransportError } from '../sync/transport-error.js';
import { DeviceClient } from '../cisco/device-client.js';
import { CssmClient, CssmError } from './client.js';
import { resolveAccount, searchAccounts } from './accounts.js';
import type { CloudCredentials } from './credentials.js';

/** The poll action for an authorization request's answer, as Cisco's published sample names it. */
export const AUTH_POLL_ACTION = 'authorizations';

export interface LicenseWanted {
  tag: string;
  quantity: number;
}

export interface ReserveInput {
  vaId: string;
  /** The reservation request code the device printed (`license smart reservation request`). */
  requestCode?: string | undefined;
  /** PID:SERIAL of a device Outpost knows, to request its authorization by UDI. */
  udi?: string | undefined;
  licenses?: LicenseWanted[] | undefined;
  hostname?: string | undefined;
}

export interface ReturnInput {
  vaId: string;
  udi: string;
  /** The return code the device printed (`license smart reservation return`). */
  returnCode: string;
  hostname?: string | undefined;
}

export interface ReservationOptions {
  clientId: string;
  domain: string;
  virtualAccounts: Record<string, string>;
  pollMs: number;
  maxPollMs: number;
  device: { timeoutMs: number; ca?: string | undefined };
}

interface Row {
  id: string;
  va_id: string;
  udi: string | null;
  kind: 'reserve' | 'return';
  request_code: string | null;
  licenses: string;
  hostname: string | null;
  poll_id: string | null;
  authorization_code: string | null;
  status: 'polling' | 'complete' | 'failed';
  message: string | null;
  polled_device_id: string | null;
  created_at: number;
  delivered_at: number | null;
  delivery_attempts: number;
  delivery_error: string | null;
}

interface Target {
  va: { id: string; name: string };
  accountId: string;
  cssmVa: { id: string; name: string };
}

interface KnownDevice {
  pid: string;
  serial: string;
  hostname: string;
  polledId: string | null;
}

const nonce = () => Array.from({ length: 16 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[randomInt(62)]).join('');
const said = (r: Record<string, unknown>) => printable(String(r.message ?? r.statusMessage ?? r.message_code ?? '')).slice(0, 300);

/** A UDI as the operator types it, PID:SERIAL. */
export function parseUdi(udi: string): { pid: string; serial: string } {
  const m = /^([^:\s]{1,64}):([^:\s]{1,64})$/.exec(udi.trim());
  if (!m) throw badRequest('invalid_udi', `the UDI "${printable(udi).slice(0, 80)}" is not PID:SERIAL (e.g. C9300-24P:FOC1234X0AB)`);
  return { pid: m[1]!, serial: m[2]! };
}

/**
 * License reservation with Cisco's cloud, for devices that may not report usage at all. A
 * device's reservation request code becomes an authorization code through reserve-licenses (a
 * SPECIFIC reservation in the VA's mapped CSSM virtual account); a device Outpost knows can
 * instead be authorized by its UDI (authrequest, then polled until CSSM answers), and returned
 * with the return code it printed. The code is kept for the operator and, for a polled IOS-XE
 * device, pushed to it (retried until it takes it). CSSM's refusals change nothing here.
 */
export class CloudReservations {
  private stopping = new AbortController();

  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private devices: PolledDeviceService,
    private events: EventService,
    private credentials: CloudCredentials,
    private logger: Logger,
    private client: (signal: AbortSignal) => CssmClient,
    private o: ReservationOptions,
  ) {}

  /** Ends any poll waiting on CSSM: what it asked stays recorded and is polled again later. */
  stop(): void {
    this.stopping.abort();
  }

  async reserve(input: ReserveInput, actor: string) {
    const licenses = input.licenses ?? [];
    if (!input.requestCode === !input.udi) throw badRequest('reservation_needs_one_of', 'give either the device\'s reservation request code (requestCode) or its UDI (udi), not both and not neither');
    if (!licenses.length) throw badRequest('no_licenses', 'name the licenses to reserve (licenses: [{tag, quantity}]): a specific reservation names each entitlement tag and its count');
    const tags = new Set<string>();
    for (const l of licenses) {
      if (tags.has(l.tag)) throw badRequest('duplicate_license', `the license ${l.tag} is named twice: give it once with the total quantity`);
      tags.add(l.tag);
    }
    const va = this.accounts.require(input.vaId);
    this.requireMapped(va);
    const device = input.udi ? this.knownDevice(input.udi, va, false) : null;
    return this.withTarget(va, async (client, t) => {
      if (input.requestCode) return this.reserveByCode(client, t, input.requestCode, licenses, device, input, actor);
      return this.authorize(client, t, device!, 'reserve', licenses, null, input.hostname, actor);
    });
  }

  async return(input: ReturnInput, actor: string) {
    const va = this.accounts.require(input.vaId);
    this.requireMapped(va);
    const device = this.knownDevice(input.udi, va, true);
    return this.withTarget(va, (client, t) => this.authorize(client, t, device, 'return', [], input.returnCode, input.hostname, actor));
  }

  list(vaId?: string) {
    const rows = (vaId
      ? this.db.prepare('SELECT * FROM cisco_reservations WHERE va_id = ? ORDER BY created_at DESC, id DESC').all(this.accounts.require(vaId).id)
      : this.db.prepare('SELECT * FROM cisco_reservations ORDER BY created_at DESC, id DESC').all()) as Row[];
    return rows.map((r) => this.view(r));
  }

  /**
   * What a reservation left for later: requests CSSM had not answered yet are polled once each,
   * and codes not yet delivered go to their polled devices. Run on the poll schedule.
   */
  async deliverPending(actor: string): Promise<{ answered: number; delivered: number; failed: number }> {
    const out = { answered: 0, delivered: 0, failed: 0 };
    const open = this.db.prepare("SELECT * FROM cisco_reservations WHERE status = 'polling' ORDER BY created_at").all() as Row[];
    for (const r of open) {
      if (this.stopping.signal.aborted) break;
      const va = this.accounts.require(r.va_id);
      try {
        await this.withTarget(va, async (client, t) => {
          const { pid, serial } = parseUdi(r.udi!);
          const done = await this.pollOnce(client, t, { pid, serial }, r, actor);
          if (done) out.answered++;
        });
      } catch (e) {
        this.logger.warn('a reservation request still open with Cisco\'s cloud could not be polled', { reservation: r.id, error: (e as Error).message });
      }
    }
    const undelivered = this.db
      .prepare("SELECT id FROM cisco_reservations WHERE polled_device_id IS NOT NULL AND delivered_at IS NULL AND status = 'complete' AND kind = 'reserve' ORDER BY created_at")
      .pluck().all() as string[];
    for (const id of undelivered) {
      if (await this.deliver(id, actor)) out.delivered++;
      else out.failed++;
    }
    return out;
  }

  private view(r: Row) {
    return {
      id: r.id, vaId: r.va_id, udi: r.udi, kind: r.kind, requestCode: r.request_code, licenses: JSON.parse(r.licenses) as LicenseWanted[], hostname: r.hostname,
      status: r.status, message: r.message, authorizationCode: r.authorization_code, createdAt: toIso(r.created_at),
      delivery: r.kind === 'return' ? null : {
        device: r.polled_device_id, deliveredAt: toIso(r.delivered_at), attempts: r.delivery_attempts, error: r.delivery_error,
        ...(r.polled_device_id ? {} : { manual: 'not a polled device: install this code on the device by hand (license smart reservation install)' }),
      },
    };
  }

  private get(id: string) {
    return this.view(this.db.prepare('SELECT * FROM cisco_reservations WHERE id = ?').get(id) as Row);
  }

  /** The CSSM virtual account a local VA is mapped to by name, refused when there is none. */
  private requireMapped(va: { name: string }): void {
    if (!this.o.virtualAccounts[va.name]) throw conflict('va_not_mapped', `VA ${va.name} is not mapped to a CSSM virtual account: add "${va.name}": "<CSSM virtual account>" to cisco.cloud.virtualAccounts`, { va: va.name });
  }

  private knownDevice(udi: string, va: { id: string; name: string }, forReturn: boolean): KnownDevice {
    const { pid, serial } = parseUdi(udi);
    const key = `${pid}:${serial}`;
    const d = this.db
      .prepare('SELECT d.id, d.va_id, d.hostname, pd.id AS polled FROM device_udis u JOIN devices d ON d.id = u.device_id LEFT JOIN polled_devices pd ON pd.device_id = d.id WHERE u.udi = ?')
      .get(key) as { id: string; va_id: string; hostname: string; polled: string | null } | undefined;
    if (!d) {
      // A device reserved through Outpost by its request code may never have reported: its return is still ours to make.
      const reserved = forReturn && this.db.prepare("SELECT 1 FROM cisco_reservations WHERE udi = ? AND va_id = ? AND kind = 'reserve' AND status = 'complete'").get(key, va.id);
      if (reserved) return { pid, serial, hostname: '', polledId: null };
      throw badRequest('unknown_udi', `no device with UDI ${key} is known to this collector${forReturn ? '' : ': reserve for it with its reservation request code instead (requestCode)'}`, { udi: key });
    }
    if (d.va_id !== va.id) {
      const other = this.accounts.require(d.va_id).name;
      throw conflict('udi_in_other_va', `the device ${key} belongs to VA ${other}, not ${va.name}`, { udi: key, va: other });
    }
    return { pid, serial, hostname: d.hostname, polledId: d.polled };
  }

  /** Runs fn with a client and the smart account and CSSM virtual account of the VA; CSSM's refusals become clear errors. */
  private async withTarget<T>(va: { id: string; name: string }, fn: (client: CssmClient, t: Target) => Promise<T>): Promise<T> {
    if (!this.o.clientId) throw conflict('no_cloud_client', "no API client is configured for Cisco's cloud: set cisco.cloud.clientId (and its secret with outpost cisco cloud credentials)");
    this.credentials.secret();
    const client = this.client(this.stopping.signal);
    try {
      const resolved = resolveAccount(await searchAccounts(client), this.o.domain, this.o.virtualAccounts, this.accounts.list().map((v) => ({ id: v.id, name: v.name })));
      const m = resolved.mappings.find((x) => x.vaId === va.id);
      if (!m?.cssm) throw conflict('va_not_mapped', `VA ${va.name} cannot reserve with Cisco's cloud: ${m?.problem ?? 'not mapped'}`, { va: va.name });
      return await fn(client, { va, accountId: resolved.account.accountId, cssmVa: m.cssm });
    } catch (e) {
      throw refusal(e);
    } finally {
      await client.close().catch(() => {});
    }
  }

  private async reserveByCode(client: CssmClient, t: Target, requestCode: string, licenses: LicenseWanted[], device: KnownDevice | null, input: ReserveInput, actor: string) {
    const path = `/v1/accounts/${encodeURIComponent(this.o.domain)}/virtual-accounts/${encodeURIComponent(t.cssmVa.name)}/reserve-licenses`;
    const body = {
      reservationRequests: [{
        reservationCode: requestCode, reservationType: 'SPECIFIC',
        licenses: licenses.map((l) => ({ entitlementTag: l.tag, quantity: l.quantity, precedence: 'LONGEST_TERM_FIRST' })),
      }],
    };
    const r = (await client.call('POST', path, body)) as Record<string, unknown>;
    const first = (Array.isArray(r.authorizationCodes) ? r.authorizationCodes[0] : undefined) as Record<string, unknown> | undefined;
    const code = typeof first?.authorizationCode === 'string' && first.authorizationCode ? first.authorizationCode : null;
    if (!code) {
      const why = (first && said(first)) || said(r) || `answered ${String(r.status ?? 'without an authorization code')}`;
      throw new AppError(502, 'cssm_refused', `Cisco's cloud did not reserve the licenses: ${why}`);
    }
    const id = newId('rsv', this.clock.now());
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO cisco_reservations (id, va_id, udi, kind, request_code, licenses, hostname, authorization_code, status, polled_device_id, created_at)
           VALUES (?, ?, ?, 'reserve', ?, ?, ?, ?, 'complete', ?, ?)`,
        )
        .run(id, t.va.id, device ? `${device.pid}:${device.serial}` : null, requestCode, JSON.stringify(licenses), input.hostname ?? null, code, device?.polledId ?? null, this.clock.now());
      this.made(id, t, device ? `${device.pid}:${device.serial}` : null, licenses, actor);
    })();
    if (device?.polledId) await this.deliver(id, actor);
    return this.get(id);
  }

  private made(id: string, t: Target, udi: string | null, licenses: LicenseWanted[], actor: string): void {
    this.events.append('cisco.reservation_made', actor, udi ?? id, t.va.id, { reservation: id, cssmVa: t.cssmVa.name, licenses });
  }

  /** authrequest for a device by UDI (keys to reserve, or a remove code to return), then polled until CSSM answers or the bound runs out. */
  private async authorize(client: CssmClient, t: Target, device: KnownDevice, kind: 'reserve' | 'return', licenses: LicenseWanted[], returnCode: string | null, hostname: string | undefined, actor: string) {
    const udi = `${device.pid}:${device.serial}`;
    const host = hostname || device.hostname || udi;
    const entry = {
      sudi: { udi_pid: device.pid, udi_serial_number: device.serial }, hostname: host,
      keys: licenses.map((l) => ({ entitlement: l.tag, count: l.quantity })),
      ...(returnCode ? { remove_code: returnCode } : {}),
    };
    const r = (await client.call('POST', '/v2/devices/authrequest', { data: { timestamp: Date.now(), nonce: nonce(), licenses: [entry] } }, this.headers(t, device))) as Record<string, unknown>;
    const pollId = typeof r.poll_id === 'string' || typeof r.poll_id === 'number' ? String(r.poll_id) : null;
    if (!pollId || String(r.status ?? '').toUpperCase() === 'FAILED') {
      throw new AppError(502, 'cssm_refused', `Cisco's cloud refused the ${kind === 'return' ? 'return' : 'authorization request'} for ${udi}: ${said(r) || `answered ${String(r.status ?? 'without a poll id')}`}`, { udi });
    }
    // Recorded before it is polled: what CSSM issues is never lost to a stop or a restart.
    const id = newId('rsv', this.clock.now());
    this.db
      .prepare(
        `INSERT INTO cisco_reservations (id, va_id, udi, kind, request_code, licenses, hostname, poll_id, status, polled_device_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'polling', ?, ?)`,
      )
      .run(id, t.va.id, udi, kind, returnCode, JSON.stringify(licenses), host, pollId, kind === 'reserve' ? device.polledId : null, this.clock.now());
    const row = () => this.db.prepare('SELECT * FROM cisco_reservations WHERE id = ?').get(id) as Row;
    const until = Date.now() + this.o.maxPollMs;
    const open = (why: string) =>
      this.db.prepare('UPDATE cisco_reservations SET message = ? WHERE id = ?').run(`${why} (poll id ${pollId}): it is polled again with the next device poll`, id);
    try {
      for (;;) {
        if (await this.pollOnce(client, t, device, row(), actor)) break;
        if (Date.now() + this.o.pollMs > until || this.stopping.signal.aborted) {
          open("Cisco's cloud had not answered within cisco.cloud.maxPollMinutes");
          break;
        }
        await sleep(this.o.pollMs, this.stopping.signal);
      }
    } catch (e) {
      // CSSM took the request: what it issues must not be lost to a failed poll.
      const err = refusal(e) as Error;
      open(`polling Cisco's cloud failed: ${err.message}`);
      if (err instanceof AppError) throw new AppError(err.status, err.code, `${err.message}; the request (reservation ${id}) stays open and is polled again with the next device poll`, { ...err.details, reservation: id });
      throw err;
    }
    const done = row();
    if (done.status === 'failed') throw new AppError(502, 'cssm_refused', `Cisco's cloud could not ${kind === 'return' ? 'take the return' : 'authorize the licenses'} for ${udi}: ${done.message}`, { udi, reservation: id });
    if (done.status === 'complete' && done.polled_device_id) await this.deliver(id, actor);
    return this.get(id);
  }

  private headers(t: Target, d: { pid: string; serial: string }): Record<string, string> {
    return {
      'content-type': 'application/json',
      'X-CSW-SMART-ACCOUNT-ID': t.accountId,
      'X-CSW-VIRTUAL-ACCOUNT-ID': t.cssmVa.id,
      'X-CSW-REQUESTING-SYSTEM': JSON.stringify({ udi_pid: d.pid, udi_serial_number: d.serial }),
    };
  }

  /** One poll of an open request; true once CSSM has answered it (COMPLETE or failed). */
  private async pollOnce(client: CssmClient, t: Target, d: { pid: string; serial: string }, row: Row, actor: string): Promise<boolean> {
    const body = { data: { timestamp: Date.now(), nonce: nonce(), poll_id: row.poll_id, action: AUTH_POLL_ACTION } };
    const r = (await client.call('POST', '/v2/accounts/poll', body, this.headers(t, d))) as Record<string, unknown>;
    const status = String(r.status ?? '').toUpperCase();
    const message = said(r);
    if (status === 'OK_POLL' && !message) return false;
    if (status === 'COMPLETE') {
      const code = typeof r.smart_license === 'string' ? Buffer.from(r.smart_license, 'base64').toString('utf8') : null;
      this.db.transaction(() => {
        this.db.prepare("UPDATE cisco_reservations SET status = 'complete', authorization_code = ?, message = NULL WHERE id = ?").run(code, row.id);
        if (row.kind === 'reserve') this.made(row.id, t, row.udi, JSON.parse(row.licenses) as LicenseWanted[], actor);
        else this.events.append('cisco.reservation_returned', actor, row.udi ?? row.id, t.va.id, { reservation: row.id, cssmVa: t.cssmVa.name });
      })();
      return true;
    }
    // OK_POLL with a message is CSSM saying the request failed (the sample's message_code).
    this.db.prepare("UPDATE cisco_reservations SET status = 'failed', message = ? WHERE id = ?").run(message || `answered ${status || 'without a status'}`, row.id);
    return true;
  }

  /** Pushes a reservation's code to its polled device; a failure is recorded and tried again by deliverPending. */
  private async deliver(id: string, actor: string): Promise<boolean> {
    const r = this.db.prepare('SELECT * FROM cisco_reservations WHERE id = ?').get(id) as Row;
    let client: DeviceClient | undefined;
    try {
      const d = this.devices.get(r.polled_device_id!);
      client = new DeviceClient(this.devices.target(d.id), this.o.device);
      await client.importAck(r.authorization_code!);
      this.db.transaction(() => {
        this.db.prepare('UPDATE cisco_reservations SET delivered_at = ?, delivery_attempts = delivery_attempts + 1, delivery_error = NULL WHERE id = ?').run(this.clock.now(), id);
        this.events.append('cisco.reservation_delivered', actor, d.id, d.vaId, { reservation: id, device: d.name });
      })();
      return true;
    } catch (e) {
      this.db.prepare('UPDATE cisco_reservations SET delivery_attempts = delivery_attempts + 1, delivery_error = ? WHERE id = ?').run((e as Error).message, id);
      return false;
    } finally {
      await client?.close().catch(() => {});
    }
  }
}

/** CSSM's refusal or the network's failure as an error the operator reads, with CSSM's own words. */
function refusal(e: unknown): unknown {
  if (e instanceof CssmError) return new AppError(502, 'cssm_refused', e.message, { status: e.status });
  if (e instanceof TransportError) return new AppError(502, 'cssm_unreachable', e.message);
  return e;
}
