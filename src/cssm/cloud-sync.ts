import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import type { Logger } from '../shared/logger.js';
import { AppError, conflict } from '../shared/errors.js';
import { UpstreamRuns } from '../sync/upstream-runs.js';
import type { CssmClient } from './client.js';
import { resolveAccount, searchAccounts, type CssmAccount, type ResolvedAccount } from './accounts.js';
import type { CloudUsage, UsageOutcome } from './usage.js';
import type { CloudPositions, PositionsOutcome } from './positions.js';
import type { CloudCredentials } from './credentials.js';

export type CloudStep = 'token' | 'accounts' | 'usage' | 'positions';

export interface CloudSyncResult {
  status: 'synced' | 'failed';
  startedAt: string;
  finishedAt: string;
  usage: UsageOutcome | null;
  positions: PositionsOutcome | null;
  error: { step: CloudStep; code: string; message: string } | null;
}

export interface CloudSyncOptions {
  mode: 'connected' | 'disconnected';
  syncCron: string;
  timeZone: string;
  apiUrl: string;
  clientId: string;
  domain: string;
  virtualAccounts: Record<string, string>;
  pollMs: number;
  maxPollMs: number;
  syncOverdueHours: number;
}

const META = (k: string) => `cssm.${k}`;

/**
 * The connected exchange with Cisco's cloud: on the sync schedule (and on demand) it fetches a
 * token, finds the smart account and maps the VAs, sends the RUM reports CSSM has not
 * acknowledged and brings their ACKs back to the devices, then reads the license positions.
 * One run at a time; what it did, and where and why it stopped, is in the status.
 */
export class CloudSync {
  private last: CloudSyncResult | null = null;
  private step: CloudStep | null = null;
  private runs: UpstreamRuns<CloudSyncResult>;

  constructor(
    private db: Db,
    private clock: Clock,
    private accounts: AccountService,
    private usage: CloudUsage,
    private positions: CloudPositions,
    private credentials: CloudCredentials,
    private alerts: AlertService,
    private events: EventService,
    private logger: Logger,
    private client: (signal: AbortSignal) => CssmClient,
    private o: CloudSyncOptions,
  ) {
    this.runs = new UpstreamRuns(db, clock, logger, {
      what: 'Cisco cloud sync', cron: o.syncCron, timeZone: o.timeZone,
      scheduled: () => this.enabled,
      ready: () => this.ready(),
      once: (actor) => this.once(actor).finally(() => (this.step = null)),
      due: {
        get: () => (this.meta('next_due') === undefined ? null : Number(this.meta('next_due'))),
        set: (at) => this.setMeta('next_due', String(at)),
      },
    });
  }

  get enabled(): boolean {
    return this.o.mode === 'connected';
  }

  private meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(META(key)) as string | undefined) ?? undefined;
  }
  private setMeta(key: string, value: string | null): void {
    if (value === null) this.db.prepare('DELETE FROM meta WHERE key = ?').run(META(key));
    else this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(META(key), value);
  }

  /** Refuses a sync that cannot start, saying what is missing. */
  private ready(): void {
    if (!this.o.clientId) throw conflict('no_cloud_client', "no API client is configured for Cisco's cloud: set cisco.cloud.clientId (and its secret with outpost cisco cloud credentials)");
    if (!this.o.domain) throw conflict('no_smart_account', "cisco.cloud.domain is not set: name the smart account's domain (outpost cisco accounts lists the ones the credentials reach)");
    this.credentials.secret();
  }

  start(actor: string): { started: boolean } {
    return this.runs.start(actor);
  }

  run(actor: string): Promise<CloudSyncResult> {
    return this.runs.run(actor);
  }

  scheduled(): Promise<CloudSyncResult | null> {
    return this.runs.scheduled();
  }

  /** At start: a sync missed while the collector was down runs now (in the background). */
  catchUp(): void {
    this.runs.catchUp();
  }

  tidy(): void {
    // Nothing is built on disk for Cisco's cloud: uploads and ACKs live in the store.
  }

  stop(): Promise<void> {
    return this.runs.stop();
  }

  idle(): Promise<void> {
    return this.runs.idle();
  }

  /** What the credentials reach, and how the local VAs map onto it: `outpost cisco accounts`. */
  async accountsView(): Promise<{ accounts: CssmAccount[]; resolved: ResolvedAccount | null; problem: string | null }> {
    this.credentials.secret();
    const client = this.client(this.runs.signal);
    try {
      const accounts = await searchAccounts(client);
      try {
        return { accounts, resolved: resolveAccount(accounts, this.o.domain, this.o.virtualAccounts, this.localVas()), problem: null };
      } catch (e) {
        if (e instanceof AppError) return { accounts, resolved: null, problem: e.message };
        throw e;
      }
    } finally {
      await client.close().catch(() => {});
    }
  }

  private localVas() {
    return this.accounts.list().map((v) => ({ id: v.id, name: v.name }));
  }

  private async once(actor: string): Promise<CloudSyncResult> {
    const startedAt = this.clock.now();
    const result: CloudSyncResult = { status: 'synced', startedAt: toIso(startedAt)!, finishedAt: '', usage: null, positions: null, error: null };
    this.db.transaction(() => this.setMeta('last_attempt_at', String(startedAt)))();
    const client = this.client(this.runs.signal);
    try {
      this.step = 'accounts';
      const resolved = resolveAccount(await searchAccounts(client), this.o.domain, this.o.virtualAccounts, this.localVas());
      this.step = 'usage';
      result.usage = await this.usage.run(client, resolved, { pollMs: this.o.pollMs, maxPollMs: this.o.maxPollMs, signal: this.runs.signal, actor });
      this.step = 'positions';
      result.positions = await this.positions.read(client, resolved);
      this.alerts.reconcile(
        'cloud_unmapped_va',
        result.usage.unmapped.map((u) => ({
          subject: u.va, severity: 'warning' as const,
          message: `${u.reports} RUM reports of VA ${u.va} cannot go to Cisco's cloud: ${u.problem}`,
          details: { reports: u.reports, problem: u.problem },
        })),
      );
      this.db.transaction(() => {
        this.setMeta('last_success_at', String(this.clock.now()));
        this.setMeta('last_error', null);
        this.events.append('cisco.cloud_synced', actor, 'cssm', null, { usage: result.usage, positions: result.positions });
      })();
    } catch (e) {
      const step = this.step ?? 'token';
      const code = (e as { code?: unknown }).code;
      result.status = 'failed';
      result.error = { step: /token/.test(String(code)) ? 'token' : step, code: typeof code === 'string' ? code : 'internal', message: (e as Error).message };
      if (typeof code !== 'string') this.logger.error('the Cisco cloud sync failed', { error: (e as Error).message });
      this.db.transaction(() => {
        this.setMeta('last_error', JSON.stringify({ ...result.error, at: this.clock.now() }));
        this.events.append('cisco.cloud_sync_failed', actor, 'cssm', null, { ...result.error });
      })();
    } finally {
      await client.close().catch(() => {});
    }
    result.finishedAt = toIso(this.clock.now())!;
    this.last = result;
    return result;
  }

  evaluateAlerts(): void {
    const now = this.clock.now();
    const last = this.meta('last_success_at');
    const since = last ? Number(last) : this.meta('last_attempt_at') ? Number(this.meta('last_attempt_at')) : null;
    const err = this.meta('last_error');
    if (this.enabled && since !== null && now - since > this.o.syncOverdueHours * 3_600_000) {
      this.alerts.raise('sync_overdue', {
        subject: 'cisco', severity: 'warning',
        message: `${last ? `no sync with Cisco's cloud has succeeded since ${toIso(since)}` : "no sync with Cisco's cloud has succeeded yet"} (more than ${this.o.syncOverdueHours} h)${err ? `: ${(JSON.parse(err) as { message: string }).message}` : ''}`,
        details: { lastSuccessAt: last ? toIso(since) : null },
      });
    } else this.alerts.clear('sync_overdue', 'cisco');
  }

  status() {
    const num = (k: string) => (this.meta(k) ? Number(this.meta(k)) : null);
    const err = this.meta('last_error');
    const e = err ? (JSON.parse(err) as { step: CloudStep; code: string; message: string; at: number }) : null;
    const uploads = this.db
      .prepare("SELECT state, count(*) AS n, coalesce(sum(reports), 0) AS reports FROM cssm_uploads GROUP BY state")
      .all() as { state: string; n: number; reports: number }[];
    const by = Object.fromEntries(uploads.map((u) => [u.state, { uploads: u.n, reports: u.reports }]));
    const waiting = this.db.prepare("SELECT count(*) AS n, min(since) AS oldest FROM report_pending WHERE destination = 'cssm'").get() as { n: number; oldest: number | null };
    const already = this.db.prepare("SELECT count(*) FROM report_acks WHERE destination = 'cssm' AND reason LIKE 'already uploaded%'").pluck().get() as number;
    return {
      mode: this.o.mode,
      upstream: { kind: 'cisco' as const, url: this.o.apiUrl, domain: this.o.domain || null },
      credentialsSetAt: this.credentials.setAt(),
      running: this.runs.busy,
      step: this.step,
      lastAttemptAt: toIso(num('last_attempt_at')),
      lastSuccessAt: toIso(num('last_success_at')),
      lastError: e ? { step: e.step, code: e.code, message: e.message, at: toIso(e.at) } : null,
      nextRunAt: this.enabled ? toIso(num('next_due')) : null,
      waiting: { reports: waiting.n, oldestSince: toIso(waiting.oldest) },
      uploads: { polling: by.polling ?? { uploads: 0, reports: 0 }, complete: by.complete ?? { uploads: 0, reports: 0 }, failed: by.failed ?? { uploads: 0, reports: 0 } },
      alreadyUploaded: already,
      lastRun: this.last,
    };
  }
}
