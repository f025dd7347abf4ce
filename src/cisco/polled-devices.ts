import { newId } from '../shared/ids.js';
import { toIso, type Clock } from '../shared/clock.js';
import { badRequest, conflict, notFound } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import type { SecretBox } from './secrets.js';
import type { DeviceTarget } from './device-client.js';

export type TlsMode = 'ca' | 'pin' | 'insecure';

export interface PolledDeviceInput {
  name: string;
  host: string;
  port: number;
  username: string;
  password: string;
  vaId: string;
  tls: { mode: TlsMode; pin?: string | undefined };
}

/** What is shown of a polled device: never its password. */
export interface PolledDevice {
  id: string;
  name: string;
  host: string;
  port: number;
  username: string;
  vaId: string;
  tls: { mode: TlsMode; pin: string | null };
  createdAt: string;
  updatedAt: string;
  lastPollAt: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  reports: number;
  /** The portal's ACKs for this device: waiting to be delivered to it, and delivered. */
  acks: { pending: number; delivered: number };
}

interface Row {
  id: string;
  name: string;
  host: string;
  port: number;
  username: string;
  password_enc: string;
  va_id: string;
  tls_mode: TlsMode;
  tls_pin: string | null;
  created_at: number;
  updated_at: number;
  last_poll_at: number | null;
  last_success_at: number | null;
  last_error: string | null;
  reports: number;
  acks_pending: number;
  acks_delivered: number;
}

const toDevice = (r: Row): PolledDevice => ({
  id: r.id, name: r.name, host: r.host, port: r.port, username: r.username, vaId: r.va_id,
  tls: { mode: r.tls_mode, pin: r.tls_pin }, createdAt: toIso(r.created_at)!, updatedAt: toIso(r.updated_at)!,
  lastPollAt: toIso(r.last_poll_at), lastSuccessAt: toIso(r.last_success_at), lastError: r.last_error, reports: r.reports,
  acks: { pending: r.acks_pending, delivered: r.acks_delivered },
});

// A polled device's ACK deliveries are those of its collector device (named by rowid in the portal's files).
const SELECT = `SELECT pd.*,
  (SELECT count(*) FILTER (WHERE p.delivered_at IS NULL) FROM ack_deliveries p WHERE p.dev_id = (SELECT CAST(rowid AS TEXT) FROM devices WHERE id = pd.device_id)) AS acks_pending,
  (SELECT count(*) FILTER (WHERE p.delivered_at IS NOT NULL) FROM ack_deliveries p WHERE p.dev_id = (SELECT CAST(rowid AS TEXT) FROM devices WHERE id = pd.device_id)) AS acks_delivered
  FROM polled_devices pd`;

/** A certificate fingerprint as openssl prints it: SHA-256 in colon-separated hex pairs (case free). */
export const PIN = /^([0-9a-f]{2}:){31}[0-9a-f]{2}$/i;

/**
 * The IOS-XE product instances the collector polls (their addresses, accounts and how their
 * certificates are trusted). Passwords are sealed with the collector's secret key, bound to the
 * device's id, and never leave this class except to the poller that signs in with them.
 */
export class PolledDeviceService {
  constructor(
    private db: Db,
    private clock: Clock,
    private secrets: SecretBox,
    private accounts: AccountService,
    private events: EventService,
  ) {}

  list(vaId?: string): PolledDevice[] {
    const rows = (vaId
      ? this.db.prepare(`${SELECT} WHERE pd.va_id = ? ORDER BY pd.name, pd.id`).all(this.accounts.require(vaId).id)
      : this.db.prepare(`${SELECT} ORDER BY pd.name, pd.id`).all()) as Row[];
    return rows.map(toDevice);
  }

  get(id: string): PolledDevice {
    return toDevice(this.row(id));
  }

  private row(id: string): Row {
    const r = this.db.prepare(`${SELECT} WHERE pd.id = ? OR pd.name = ?`).get(id, id) as Row | undefined;
    if (!r) throw notFound('polled device', id);
    return r;
  }

  /** Where and how to reach a device, its password opened: for the poller and the ACK delivery alone. */
  target(id: string): DeviceTarget {
    const d = this.get(id);
    return { host: d.host, port: d.port, username: d.username, password: this.password(d.id), tls: d.tls };
  }

  /** The password to sign in with, for the poller alone. */
  password(id: string): string {
    const r = this.row(id);
    return this.secrets.open(r.password_enc, r.id);
  }

  add(input: PolledDeviceInput, actor: string): PolledDevice {
    return this.db.transaction(() => this.insert(input, actor))();
  }

  private insert(input: PolledDeviceInput, actor: string): PolledDevice {
    const va = this.accounts.require(input.vaId);
    checkTls(input.tls);
    const taken = this.db.prepare('SELECT id FROM polled_devices WHERE host = ? AND port = ?').get(input.host, input.port) as { id: string } | undefined;
    if (taken) throw conflict('device_exists', `${input.host}:${input.port} is polled already, as ${taken.id}`, { id: taken.id });
    const now = this.clock.now();
    const id = newId('pdev', now);
    this.db
      .prepare(
        `INSERT INTO polled_devices (id, name, host, port, username, password_enc, va_id, tls_mode, tls_pin, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, input.name, input.host, input.port, input.username, this.secrets.seal(input.password, id), va.id, input.tls.mode, input.tls.pin?.toLowerCase() ?? null, now, now);
    // The event says how the device is trusted: skipping certificate checks must show in the trail.
    this.events.append('cisco.device_added', actor, id, va.id, { name: input.name, host: input.host, port: input.port, username: input.username, tls: input.tls.mode });
    return this.get(id);
  }

  edit(id: string, patch: Partial<PolledDeviceInput>, actor: string): PolledDevice {
    return this.db.transaction(() => {
      const r = this.row(id);
      const tls = patch.tls ?? { mode: r.tls_mode, pin: r.tls_pin ?? undefined };
      checkTls(tls);
      const vaId = patch.vaId ? this.accounts.require(patch.vaId).id : r.va_id;
      const host = patch.host ?? r.host;
      const port = patch.port ?? r.port;
      const taken = this.db.prepare('SELECT id FROM polled_devices WHERE host = ? AND port = ? AND id != ?').get(host, port, r.id) as { id: string } | undefined;
      if (taken) throw conflict('device_exists', `${host}:${port} is polled already, as ${taken.id}`, { id: taken.id });
      this.db
        .prepare('UPDATE polled_devices SET name = ?, host = ?, port = ?, username = ?, password_enc = ?, va_id = ?, tls_mode = ?, tls_pin = ?, updated_at = ? WHERE id = ?')
        .run(
          patch.name ?? r.name, host, port, patch.username ?? r.username,
          patch.password !== undefined ? this.secrets.seal(patch.password, r.id) : r.password_enc,
          vaId, tls.mode, tls.pin?.toLowerCase() ?? null, this.clock.now(), r.id,
        );
      const changed = Object.keys(patch).map((k) => (k === 'password' ? 'password (not recorded)' : k));
      this.events.append('cisco.device_changed', actor, r.id, vaId, { changed, ...(patch.tls ? { tls: tls.mode } : {}) });
      return this.get(r.id);
    })();
  }

  remove(id: string, actor: string): { id: string; removed: true } {
    return this.db.transaction(() => {
      const r = this.row(id);
      this.db.prepare('DELETE FROM polled_devices WHERE id = ?').run(r.id);
      this.events.append('cisco.device_removed', actor, r.id, r.va_id, { name: r.name, host: r.host, port: r.port });
      return { id: r.id, removed: true as const };
    })();
  }

  /**
   * Many devices from CSV: a header line naming the columns (name, host, port, username,
   * password, va, and optionally tls and pin), then one device a line. Every line is checked
   * before any is added: one bad line adds none, and the error names its line and column.
   */
  importCsv(text: string, actor: string): { added: PolledDevice[] } {
    const rows = parseCsv(text);
    const header = rows.shift()?.map((h) => h.trim().toLowerCase());
    if (!header) throw badRequest('empty_csv', 'the CSV holds no header line');
    const need = ['name', 'host', 'port', 'username', 'password', 'va'];
    const missing = need.filter((c) => !header.includes(c));
    if (missing.length) throw badRequest('bad_csv', `the CSV header lacks ${missing.join(', ')} (it has ${header.join(', ')})`);
    const unknown = header.filter((h) => ![...need, 'tls', 'pin'].includes(h));
    if (unknown.length) throw badRequest('bad_csv', `the CSV header has unknown column(s) ${unknown.join(', ')}`);
    const inputs = rows.map((cells, i): PolledDeviceInput => {
      const line = i + 2;
      if (cells.length !== header.length) throw badRequest('bad_csv', `line ${line}: ${cells.length} fields, the header has ${header.length}`);
      const at = (c: string) => cells[header.indexOf(c)]?.trim() ?? '';
      const port = Number(at('port'));
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw badRequest('bad_csv', `line ${line}, port: a port number, not ${JSON.stringify(at('port'))}`);
      for (const c of ['name', 'host', 'username', 'password', 'va']) if (!at(c)) throw badRequest('bad_csv', `line ${line}, ${c}: empty`);
      const mode = (header.includes('tls') && at('tls') ? at('tls') : 'ca') as TlsMode;
      if (!['ca', 'pin', 'insecure'].includes(mode)) throw badRequest('bad_csv', `line ${line}, tls: ca, pin or insecure, not ${JSON.stringify(mode)}`);
      const pin = header.includes('pin') && at('pin') ? at('pin') : undefined;
      return { name: at('name'), host: at('host'), port, username: at('username'), password: cells[header.indexOf('password')] ?? '', vaId: at('va'), tls: { mode, pin } };
    });
    return this.db.transaction(() => ({
      added: inputs.map((input, i) => {
        try {
          return this.insert(input, actor);
        } catch (e) {
          if (e instanceof Error && 'code' in e) e.message = `line ${i + 2}: ${e.message}`;
          throw e;
        }
      }),
    }))();
  }
}

function checkTls(tls: { mode: TlsMode; pin?: string | undefined }): void {
  if (tls.mode === 'pin' && !(tls.pin && PIN.test(tls.pin))) {
    throw badRequest('bad_pin', 'a pinned device needs its certificate fingerprint: SHA-256 as 32 colon-separated hex pairs (openssl x509 -fingerprint -sha256)');
  }
  if (tls.mode !== 'pin' && tls.pin) throw badRequest('bad_pin', `a pin is given only with tls mode pin, not ${tls.mode}`);
}

/** RFC 4180 CSV: commas, double-quoted fields with "" for a quote, CRLF or LF lines; blank lines skipped. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      (row = []), (field = '');
    } else field += c;
  }
  if (quoted) throw badRequest('bad_csv', 'a quoted field is not closed');
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}
