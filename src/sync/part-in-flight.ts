import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Logger } from '../shared/logger.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { AppError } from '../shared/errors.js';
import type { ExchangeState } from '../exchange/state.js';
import type { ImportService } from '../exchange/import.js';
import { readManifest } from '../exchange/read.js';
import { SYNC_BASE } from './protocol.js';
import { errorCode, errorMessage } from './reply.js';
import { isTransportFailure, type SyncTransport } from './transport.js';
import { SyncFailure, sleep, upstreamRefusal } from './failure.js';
import type { InFlight, SyncState } from './sync-state.js';

/** What one sync lends the part it sends: its connection, who acts, and where its progress goes. */
export interface PartRun {
  t: SyncTransport;
  actor: string;
  step(s: 'uploading' | 'waiting' | 'applying'): void;
  applied(f: InFlight, acks: { accepted: number; rejected: number }): void;
}

/**
 * One part of a sync, from the post to the applied answer: posted again (never rebuilt) after
 * any fault, its answer fetched with a long poll, refused unless it answers this part, and
 * applied by the import that reads response files. A part the upstream will never answer is
 * dropped: its reports are still waiting, and the next part carries them.
 */
export class PartInFlight {
  constructor(
    private db: Db,
    private clock: Clock,
    private exchange: ExchangeState,
    private state: SyncState,
    private importer: ImportService,
    private alerts: AlertService,
    private events: EventService,
    private logger: Logger,
    private retry: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
    private signal: AbortSignal,
    private opts: { bundleDir: string; waitSeconds: number; maxProcessingSeconds: number; maxResponseBytes: number },
  ) {}

  /**
   * Posts a part (again, if it was posted before), waits for its answer, and applies it. A part
   * the upstream refuses as a replay (it has seen a later bundle and not this one) is dropped:
   * its reports are still waiting, and the next part carries them.
   */
  async complete(run: PartRun, f: InFlight): Promise<void> {
    const { t, actor } = run;
    if (f.sequence <= this.exchange.answeredHwm) return this.drop(f, actor, 'overtaken', `a response to a later usage bundle (${this.exchange.answeredHwm}) was applied`);
    const deadline = Date.now() + this.opts.maxProcessingSeconds * 1000;
    let reposts = 0;
    post: for (;;) {
      run.step('uploading');
      const posted = await this.retry('uploading usage', () => t.postBundle(`${SYNC_BASE}/usage`, f.file));
      // Refused as a replay (a later bundle of ours was processed; its job may have failed with
      // that refusal): the upstream will never answer it, and its reports wait for the next part.
      const replay = (r: { status: number; json?: unknown }) => (r.status === 409 || r.status === 422) && errorCode(r.json) === 'replay';
      if (replay(posted)) return this.drop(f, actor, 'refused_replay', errorMessage(posted.json));
      if (posted.status !== 200 && posted.status !== 202) throw this.refused(f, actor, 'the upstream refused the usage bundle', posted);
      if (f.postedAt === null) {
        f.postedAt = this.clock.now();
        this.db.transaction(() => (this.state.inFlight = f))();
      }
      run.step('waiting');
      const received = join(this.opts.bundleDir, 'received');
      mkdirSync(received, { recursive: true });
      const toFile = join(received, `response-to-seq${String(f.sequence).padStart(6, '0')}.bundle`);
      for (;;) {
        if (this.signal.aborted) throw new SyncFailure('stopped', 'the collector is stopping; the part in flight is resumed by the next sync');
        const asked = Date.now();
        const r = await this.retry('fetching the answer', () =>
          t.fetchBundle(`${SYNC_BASE}/usage/${encodeURIComponent(f.bundleId)}/response`, { wait: this.opts.waitSeconds, toFile, maxBytes: this.opts.maxResponseBytes }),
        ).catch((e: unknown) => {
          // Something that is not an Outpost answer came back where the answer belongs (a
          // proxy's or portal's page): a refused reply, like one that fails verification.
          throw isTransportFailure(e) && e.code === 'not_outpost' ? this.refuseReply(f, actor, e.code, e.message, null) : e;
        });
        if (r.status === 200 && r.file) {
          run.step('applying');
          await this.apply(run, r.file, f);
          return;
        }
        if (r.status === 404 && reposts++ < 3) continue post; // the upstream lost it before storing it: send it again
        if (replay(r)) return this.drop(f, actor, 'refused_replay', errorMessage(r.json));
        // The upstream failed on its own side (a full disk): posting the part again runs it again.
        if (r.status === 422 && errorCode(r.json) === 'processing_error' && reposts++ < 3) continue post;
        if (r.status !== 202) throw this.refused(f, actor, `the upstream did not answer usage bundle ${f.sequence}`, r);
        if (Date.now() > deadline) {
          throw new SyncFailure('still_processing', `the upstream is still processing usage bundle ${f.sequence} after ${this.opts.maxProcessingSeconds} s; the next sync fetches its answer`);
        }
        // A 202 sooner than the wait asked for (an upstream stopping, or one that does not hold
        // polls) is asked again only after its Retry-After, and never sooner than a second.
        if (Date.now() - asked < this.opts.waitSeconds * 1000 || !this.opts.waitSeconds) {
          await sleep(Math.max(1, Math.min(10, r.retryAfterSeconds ?? 1)) * 1000, this.signal);
        }
      }
    }
  }

  private async apply(run: PartRun, file: string, f: InFlight): Promise<void> {
    const { actor } = run;
    try {
      // Read unverified only to refuse early: the import verifies everything before it applies anything.
      const claimed = await readManifest(file).catch((e: unknown) => {
        throw new SyncFailure('reply_refused', `the upstream's reply is not a bundle: ${(e as Error).message}`);
      });
      if (claimed.manifest.answers?.bundleId !== f.bundleId) {
        throw new SyncFailure('reply_refused', `the reply answers ${claimed.manifest.answers?.bundleId ?? 'nothing'}, not usage bundle ${f.bundleId} (sequence ${f.sequence}) that was sent`);
      }
      const r = await this.importer.import(file, { force: false, actor });
      run.applied(f, r.acks);
      this.db.transaction(() => {
        this.state.inFlight = null;
        this.alerts.clear('sync_reply_refused', 'upstream');
      })();
      rmSync(f.file, { force: true });
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      if (e.code === 'out_of_order' && f.sequence <= this.exchange.answeredHwm) {
        // A response to a later bundle (an export carried by hand meanwhile) was applied while
        // this one was fetched: it settled these reports too. Nothing is wrong with this answer.
        return this.drop(f, actor, 'overtaken', e.message);
      }
      throw this.refuseReply(f, actor, e.code, e.message, this.importer.archive(file, 'rejected', `${e.code}: ${e.message}`));
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** A refused answer changes nothing, and leaves an event, an alert and the reason for the status. */
  private refuseReply(f: InFlight, actor: string, code: string, message: string, kept: string | null): SyncFailure {
    this.db.transaction(() => {
      this.events.append('sync.reply_refused', actor, f.bundleId, null, { code, reason: message, sequence: f.sequence, file: kept });
      this.alerts.raise('sync_reply_refused', {
        subject: 'upstream', severity: 'critical',
        message: `the upstream's answer to usage bundle ${f.sequence} was refused: ${message}`,
        details: { code, file: kept, bundleId: f.bundleId },
      });
    })();
    return new SyncFailure('reply_refused', `the upstream's answer to usage bundle ${f.sequence} was refused, nothing was applied: ${message} (${code})`);
  }

  /**
   * A refusal of the part in flight. A final one (the bundle itself refused: 400, 413, 422) drops
   * the part, so that the next sync builds a new one from the reports still waiting rather than
   * posting the same file for ever; a conflict, or a failure of the upstream's own, keeps it.
   */
  private refused(f: InFlight, actor: string, what: string, r: { status: number; json?: unknown }): SyncFailure {
    const code = errorCode(r.json);
    const final = (r.status === 400 || r.status === 413 || r.status === 422) && code !== 'processing_error' && code !== 'bundle_conflict';
    if (final) this.drop(f, actor, 'refused', `${r.status} ${code ?? ''}: ${errorMessage(r.json)}`);
    return upstreamRefusal(what, r);
  }

  drop(f: InFlight, actor: string, why: string, message: string): void {
    this.db.transaction(() => {
      this.state.inFlight = null;
      this.events.append('sync.part_dropped', actor, f.bundleId, null, { sequence: f.sequence, reason: why, message });
    })();
    rmSync(f.file, { force: true });
    this.logger.info('a part in flight was dropped; its reports go in the next part', { sequence: f.sequence, reason: why });
  }
}
