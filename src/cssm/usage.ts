import { randomInt } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { Logger } from '../shared/logger.js';
import { newId } from '../shared/ids.js';
import { printable } from '../sync/reply.js';
import { sleep } from '../sync/failure.js';
import type { AckDelivery } from '../cisco/ack-delivery.js';
import { CssmError, type CssmClient } from './client.js';
import type { ResolvedAccount } from './accounts.js';
import { reportJson } from './report-json.js';

/** The poll action for a usage upload's answer, as Cisco's published sample names it. */
export const USAGE_POLL_ACTION = 'acknowledgements';
/** Reports in one upload: a device's reports go together, a device with very many in several requests. */
export const MAX_REPORTS_PER_UPLOAD = 50;
/** Requests to CSSM at once. */
const CONCURRENCY = 4;

const IN_OPEN_UPLOAD = `SELECT 1 FROM cssm_upload_reports u JOIN cssm_uploads x ON x.id = u.upload_id
  WHERE u.report_id = p.report_id AND x.state IN ('uploading', 'polling')`;

/**
 * Runs `fn` over the items, at most `n` at once. No new item is taken once `signal` is aborted
 * or one has failed; the others in hand finish, then the first failure is thrown.
 */
async function eachAtOnce<T>(items: T[], n: number, signal: AbortSignal, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && !signal.aborted && !failure) {
      try {
        await fn(items[next++]!);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure) throw (failure as { e: unknown }).e;
}

export interface UsageOutcome {
  /** Uploads CSSM took this run (each got a poll id), and the reports they carried. */
  uploads: number;
  reportsUploaded: number;
  /** Reports CSSM already held: marked uploaded, covered by the device's next ACK, never sent again. */
  alreadyUploaded: number;
  /** Uploads answered (COMPLETE) this run, and the reports their ACKs settled. */
  completed: number;
  acknowledged: number;
  /** Uploads still being processed by CSSM: polled again at the next sync. */
  stillPolling: number;
  failed: { device: string; message: string }[];
  /** Reports waiting for CSSM whose VA is not mapped, per VA. */
  unmapped: { va: string; reports: number; problem: string }[];
}

interface Waiting {
  report_id: number;
  since: number;
  body: string;
  device_id: string;
  dev_rowid: number;
  va_id: string;
  udi_pid: string;
  udi_serial: string;
}

interface Upload {
  id: string;
  device_id: string;
  cssm_va_id: string;
  poll_id: string | null;
  udi_pid: string;
  udi_serial: string;
  dev_rowid: number;
}

const nonce = () => Array.from({ length: 16 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[randomInt(62)]).join('');
const said = (r: Record<string, unknown>) => printable(String(r.message ?? r.message_code ?? r.status_message ?? '')).slice(0, 300);

/**
 * Usage up, ACKs down, with Cisco's cloud. Each device's RUM reports that CSSM has not
 * acknowledged go in one request (its UDI in X-CSW-REQUESTING-SYSTEM); the upload is recorded
 * before it is sent and its poll id as soon as CSSM answers, so a restart polls what was sent
 * and never sends it again. A COMPLETE answer's ACK settles exactly the versions of the reports
 * the upload carried and is delivered to the device. An upload cut before CSSM answered is
 * sent again: CSSM then says the reports are already uploaded, which settles them.
 */
export class CloudUsage {
  constructor(
    private db: Db,
    private clock: Clock,
    private events: EventService,
    private delivery: AckDelivery,
    private logger: Logger,
  ) {}

  async run(client: CssmClient, resolved: ResolvedAccount, o: { pollMs: number; maxPollMs: number; signal: AbortSignal; actor: string }): Promise<UsageOutcome> {
    const out: UsageOutcome = { uploads: 0, reportsUploaded: 0, alreadyUploaded: 0, completed: 0, acknowledged: 0, stillPolling: 0, failed: [], unmapped: [] };
    this.abandonInterrupted();
    const byVa = new Map(resolved.mappings.map((m) => [m.vaId, m]));
    const unmapped = new Map<string, { va: string; reports: number; problem: string }>();
    // Device by device, each one's reports read when it is its turn: a first sync of a large
    // site never holds every report in memory. A few devices at once, as CSSM takes its time.
    const devices = this.waitingDevices();
    await eachAtOnce(devices, CONCURRENCY, o.signal, async (device) => {
      for (;;) {
        const group = this.waitingOf(device);
        if (!group.length) return;
        const first = group[0]!;
        const m = byVa.get(first.va_id);
        if (!m?.cssm) {
          const u = unmapped.get(first.va_id) ?? { va: m?.vaName ?? first.va_id, reports: 0, problem: m?.problem ?? 'not mapped' };
          u.reports += this.countWaitingOf(device);
          unmapped.set(first.va_id, u);
          return;
        }
        await this.upload(client, resolved.account.accountId, m.cssm.id, group, out, true);
        if (o.signal.aborted || group.length < MAX_REPORTS_PER_UPLOAD) return;
      }
    });
    out.unmapped = [...unmapped.values()];
    await this.pollAll(client, resolved.account.accountId, o, out);
    if (out.completed || out.alreadyUploaded) await this.delivery.deliver(o.actor);
    return out;
  }

  /** Uploads whose answer never arrived (the collector stopped mid-request) are sent again as new ones. */
  private abandonInterrupted(): void {
    this.db
      .prepare("UPDATE cssm_uploads SET state = 'failed', message = 'interrupted before Cisco answered: sent again', updated_at = ? WHERE state = 'uploading'")
      .run(this.clock.now());
  }

  /** The devices with RUM reports waiting for CSSM that no open upload carries. */
  private waitingDevices(): string[] {
    return this.db
      .prepare(
        `SELECT DISTINCT r.device_id FROM report_pending p JOIN reports r ON r.id = p.report_id
         WHERE p.destination = 'cssm' AND NOT EXISTS (${IN_OPEN_UPLOAD}) ORDER BY r.device_id`,
      )
      .pluck()
      .all() as string[];
  }

  /** One device's waiting reports, at most MAX_REPORTS_PER_UPLOAD of them. */
  private waitingOf(deviceId: string): Waiting[] {
    return this.db
      .prepare(
        `SELECT p.report_id, p.since, r.body, r.device_id, d.rowid AS dev_rowid, d.va_id, d.udi_pid, d.udi_serial
         FROM report_pending p JOIN reports r ON r.id = p.report_id JOIN devices d ON d.id = r.device_id
         WHERE p.destination = 'cssm' AND r.device_id = ? AND NOT EXISTS (${IN_OPEN_UPLOAD}) ORDER BY p.report_id LIMIT ?`,
      )
      .all(deviceId, MAX_REPORTS_PER_UPLOAD) as Waiting[];
  }

  private countWaitingOf(deviceId: string): number {
    return this.db
      .prepare(`SELECT count(*) FROM report_pending p JOIN reports r ON r.id = p.report_id WHERE p.destination = 'cssm' AND r.device_id = ? AND NOT EXISTS (${IN_OPEN_UPLOAD})`)
      .pluck()
      .get(deviceId) as number;
  }

  private headers(accountId: string, vaId: string, pid: string, serial: string): Record<string, string> {
    return {
      'content-type': 'application/json',
      'X-CSW-SMART-ACCOUNT-ID': accountId,
      'X-CSW-VIRTUAL-ACCOUNT-ID': vaId,
      'X-CSW-REQUESTING-SYSTEM': JSON.stringify({ udi_pid: pid, udi_serial_number: serial }),
    };
  }

  private async upload(client: CssmClient, accountId: string, cssmVa: string, group: Waiting[], out: UsageOutcome, mayRetrySingly: boolean): Promise<void> {
    const d = group[0]!;
    const id = newId('cup', this.clock.now());
    const now = this.clock.now();
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO cssm_uploads (id, device_id, cssm_va_id, state, reports, created_at, updated_at) VALUES (?, ?, ?, 'uploading', ?, ?, ?)")
        .run(id, d.device_id, cssmVa, group.length, now, now);
      const carry = this.db.prepare('INSERT INTO cssm_upload_reports (upload_id, report_id, since) VALUES (?, ?, ?)');
      for (const r of group) carry.run(id, r.report_id, r.since);
    })();
    // The reports exactly as the devices wrote them: their JSON text, never parsed and written again.
    const body = `{"data":{"timestamp":${Date.now()},"nonce":"${nonce()}","reports":[${group.map((r) => reportJson(r.body)).join(',')}]}}`;
    let r: Record<string, unknown>;
    try {
      r = (await client.call('POST', '/v2/devices/reportusage', body, this.headers(accountId, cssmVa, d.udi_pid, d.udi_serial))) as Record<string, unknown>;
    } catch (e) {
      // CSSM refusing this one request (a 4xx about its content) fails this upload only; the
      // network, the token or a stop ends the sync, and the upload is sent again by the next.
      if (!(e instanceof CssmError) || e.status === 401 || e.code === 'token_refused') {
        this.finish(id, 'failed', `not answered: ${(e as Error).message}`);
        throw e;
      }
      r = { status: 'FAILED', message: e.message };
    }
    const pollId = typeof r.poll_id === 'string' || typeof r.poll_id === 'number' ? String(r.poll_id) : null;
    const status = String(r.status ?? '').toUpperCase();
    if (pollId && status !== 'FAILED') {
      this.db.prepare("UPDATE cssm_uploads SET state = 'polling', poll_id = ?, updated_at = ? WHERE id = ?").run(pollId, this.clock.now(), id);
      out.uploads++;
      out.reportsUploaded += group.length;
      return;
    }
    const message = said(r) || `answered ${status || 'without a poll id'}`;
    if (/already/i.test(message)) {
      if (group.length > 1 && mayRetrySingly) {
        // CSSM refuses the whole request for one report it holds: each report alone, so the others still go.
        this.finish(id, 'failed', `${message} (sent again one report at a time)`);
        for (const one of group) await this.upload(client, accountId, cssmVa, [one], out, false);
        return;
      }
      this.db.transaction(() => {
        this.finish(id, 'already_uploaded', message);
        out.alreadyUploaded += this.settle(id, `already uploaded: ${message}`);
      })();
      return;
    }
    this.finish(id, 'failed', message);
    this.events.append('cisco.cloud_upload_failed', 'system', d.device_id, d.va_id, { upload: id, reports: group.length, message });
    out.failed.push({ device: `${d.udi_pid}:${d.udi_serial}`, message });
  }

  private finish(id: string, state: 'complete' | 'already_uploaded' | 'failed', message: string | null): void {
    this.db.prepare('UPDATE cssm_uploads SET state = ?, message = ?, updated_at = ? WHERE id = ?').run(state, message, this.clock.now(), id);
  }

  /** Settles for CSSM the reports the upload carried, in the version it carried; how many. */
  private settle(uploadId: string, reason: string | null): number {
    const carried = `SELECT u.report_id FROM cssm_upload_reports u JOIN report_pending p ON p.destination = 'cssm' AND p.report_id = u.report_id AND p.since = u.since WHERE u.upload_id = ?`;
    const n = this.db
      .prepare(`INSERT OR REPLACE INTO report_acks (destination, report_id, status, reason, acked_at) SELECT 'cssm', report_id, 'accepted', ?, ? FROM (${carried})`)
      .run(reason, this.clock.now(), uploadId).changes;
    this.db.prepare(`DELETE FROM report_pending WHERE destination = 'cssm' AND report_id IN (${carried})`).run(uploadId);
    return n;
  }

  /** Polls every open upload until CSSM has answered them all, or the bound for this sync runs out. */
  private async pollAll(client: CssmClient, accountId: string, o: { pollMs: number; maxPollMs: number; signal: AbortSignal }, out: UsageOutcome): Promise<void> {
    const until = Date.now() + o.maxPollMs;
    const open = () =>
      this.db
        .prepare(
          `SELECT x.id, x.device_id, x.cssm_va_id, x.poll_id, d.udi_pid, d.udi_serial, d.rowid AS dev_rowid
           FROM cssm_uploads x JOIN devices d ON d.id = x.device_id WHERE x.state = 'polling' ORDER BY x.created_at`,
        )
        .all() as Upload[];
    for (let round = 0; ; round++) {
      const list = open();
      if (!list.length) break;
      if (round > 0) {
        if (Date.now() + o.pollMs * 2 ** Math.min(3, round - 1) > until || o.signal.aborted) {
          out.stillPolling = list.length;
          break;
        }
        // CSSM takes minutes: the wait doubles each round, up to eight times pollSeconds.
        await sleep(Math.min(o.pollMs * 2 ** Math.min(3, round - 1), Math.max(0, until - Date.now())), o.signal);
      }
      await eachAtOnce(list, CONCURRENCY, o.signal, (u) => this.pollOne(client, accountId, u, out));
    }
  }

  private async pollOne(client: CssmClient, accountId: string, u: Upload, out: UsageOutcome): Promise<void> {
    const body = { data: { timestamp: Date.now(), nonce: nonce(), poll_id: u.poll_id, action: USAGE_POLL_ACTION } };
    const r = (await client.call('POST', '/v2/accounts/poll', body, this.headers(accountId, u.cssm_va_id, u.udi_pid, u.udi_serial))) as Record<string, unknown>;
    const status = String(r.status ?? '').toUpperCase();
    const message = said(r);
    if (status === 'OK_POLL' && !message) {
      this.db.prepare('UPDATE cssm_uploads SET polls = polls + 1, updated_at = ? WHERE id = ?').run(this.clock.now(), u.id);
      return;
    }
    if (status === 'COMPLETE') {
      const ack = typeof r.smart_license === 'string' ? Buffer.from(r.smart_license, 'base64') : null;
      this.db.transaction(() => {
        this.finish(u.id, 'complete', null);
        out.acknowledged += this.settle(u.id, null);
        if (ack?.length) {
          this.db
            .prepare("INSERT OR IGNORE INTO ack_deliveries (destination, upload_id, dev_id, content, has_policy, received_at) VALUES ('cssm', ?, ?, ?, ?, ?)")
            .run(u.id, String(u.dev_rowid), ack, /<smartLicensePolicy/.test(ack.toString('utf8')) ? 1 : 0, this.clock.now());
        }
        this.events.append('cisco.cloud_ack_received', 'system', u.device_id, null, { upload: u.id, pollId: u.poll_id, ack: Boolean(ack?.length) });
      })();
      out.completed++;
      return;
    }
    // OK_POLL with a message is CSSM saying the processing failed (the sample's message_code).
    const why = message || `answered ${status || 'without a status'}`;
    this.finish(u.id, 'failed', why);
    this.events.append('cisco.cloud_upload_failed', 'system', u.device_id, null, { upload: u.id, pollId: u.poll_id, message: why });
    out.failed.push({ device: `${u.udi_pid}:${u.udi_serial}`, message: why });
    this.logger.warn('Cisco cloud could not process an upload', { upload: u.id, message: why });
  }
}
