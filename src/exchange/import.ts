import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { newId } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { Identity } from '../identity/identity.js';
import type { EventService } from '../events/service.js';
import type { AlertService } from '../alerts/service.js';
import type { AccountService } from '../accounts/service.js';
import type { LicenseService } from '../licenses/service.js';
import type { PolicyService } from '../policy/service.js';
import type { TrustedTime } from '../time/trusted-time.js';
import type { UsageKey } from '../licenses/ledger.js';
import { BundleError, readLinesSync, verifyBundle } from './read.js';
import type { ExchangeState } from './state.js';
import { upstreamKeyFor } from './trust.js';
import { PAYLOAD } from './records.js';
import type { Manifest } from './manifest.js';
import { parseStrictJson } from './strict-json.js';
import { checkRotation } from './rotation.js';
import { ImportProgressStore, type ImportProgress } from './import-progress.js';
import { ackSchema, applyAcks } from './import-acks.js';
import { conflict } from '../shared/errors.js';
import { Pacer } from '../shared/pacer.js';
import { throttled, type OnProgress } from '../shared/progress.js';

export interface ImportOptions {
  force: boolean;
  actor: string;
  /** Told how far the import has got (verify, check, apply), for a caller that follows it. */
  onProgress?: OnProgress;
}

export interface ImportResult {
  status: 'applied' | 'already_imported';
  bundleId: string;
  sequence: number;
  answers: string | null;
  forced: boolean;
  acks: { accepted: number; rejected: number; stale: number };
  entitlements: { applied: number; skippedOlder: number };
  policy: 'applied' | 'older' | 'none';
  virtualAccounts: { confirmed: number; refused: number };
  /** The upstream's answers to license transfers (format version 2; none from an older upstream). */
  transfers: { confirmed: number; refused: number };
  archivedAs: string | null;
  /** The same response was interrupted before and has now been completed. */
  resumed: boolean;
}

const lineSchema = z.strictObject({
  tag: z.string().min(1).max(256),
  displayName: z.string().max(256),
  kind: z.enum(['perpetual', 'subscription', 'term', 'unlimited']),
  quantity: z.number().int().nonnegative(),
  startsAt: z.iso.datetime(),
  endsAt: z.iso.datetime().nullable(),
});
const snapshotSchema = z.strictObject({ vaId: z.string().min(1), vaName: z.string().min(1).max(100), version: z.number().int().positive(), lines: z.array(lineSchema) });
const policySchema = z.strictObject({ version: z.number().int().positive(), reportingIntervalDays: z.number().int().positive(), ackDueDays: z.number().int().positive() });
const vaConfirmationSchema = z.strictObject({ vaId: z.string().min(1), name: z.string().min(1).max(100), status: z.enum(['confirmed', 'refused']), reason: z.string().nullable() });
const transferOutcomeSchema = z.strictObject({ transferId: z.string().min(1).max(100), status: z.enum(['confirmed', 'refused']), reason: z.string().max(500).nullable() });

/**
 * Applies a response bundle from the upstream. Everything is verified before anything is
 * written: the signature against the pinned key, the high-water marks, and every record of
 * every payload. Then the ACKs are applied in bounded slices, each its own transaction that
 * also records how far it reached, with the event loop free between them (3M ACKs would
 * otherwise hold every device for seconds); last, in one transaction, the entitlement
 * snapshots, policy, VA confirmations and high-water marks. A response interrupted part-way
 * (a crash, a full disk) is completed by importing it again, and no other response starts
 * meanwhile: its snapshot is applied whole or not at all, and each ACK is counted once.
 */
export class ImportService {
  /** Rows of pending reports one ACK slice may settle: about 10 ms of work on a small machine. */
  ackSliceRows = 5_000;
  private progress: ImportProgressStore;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private db: Db,
    private clock: Clock,
    private time: TrustedTime,
    private identity: Identity,
    private state: ExchangeState,
    private accounts: AccountService,
    private licenses: LicenseService,
    private policy: PolicyService,
    private events: EventService,
    private alerts: AlertService,
    private bundleDir: string,
    /** exchange.maxResponseBytes and exchange.maxResponseRatio: what a response may inflate to. */
    private extractLimits: { maxBytes: number; maxRatio: number } = { maxBytes: 1 << 30, maxRatio: 200 },
  ) {
    this.progress = new ImportProgressStore(db);
  }

  /** Imports run one at a time: two responses' slices must never interleave. */
  import(file: string, o: ImportOptions): Promise<ImportResult> {
    const run = this.queue.then(() => this.importOne(file, o));
    this.queue = run.catch(() => {});
    return run;
  }

  private async importOne(file: string, o: ImportOptions): Promise<ImportResult> {
    const work = mkdtempSync(join(this.bundleDir, '.import-'));
    const onProgress = o.onProgress && throttled(o.onProgress);
    try {
      // The first progress line comes once the bundle is verified and accepted for import: a
      // refusal before it keeps its own HTTP status for a caller following the stream.
      const v = await verifyBundle(file, { kinds: ['response', 'key-rotation'], keyFor: upstreamKeyFor(this.state, this.time.now()), extractTo: work, extractLimits: this.extractLimits });
      const m = v.manifest;
      if (m.kind === 'key-rotation') return this.applyRotation(file, m, v.hash, o.actor);
      const base: ImportResult = {
        status: 'already_imported', bundleId: m.bundleId, sequence: m.sequence, answers: m.answers?.bundleId ?? null, forced: o.force,
        acks: { accepted: 0, rejected: 0, stale: 0 }, entitlements: { applied: 0, skippedOlder: 0 }, policy: 'none',
        virtualAccounts: { confirmed: 0, refused: 0 }, transfers: { confirmed: 0, refused: 0 }, archivedAs: null, resumed: false,
      };
      if (this.state.bundleByHash(v.hash)) return base; // idempotent: the second time is a no-op that says so
      this.checkBinding(m);
      const answered = m.answers ? this.state.bundle(m.answers.bundleId) : undefined;
      if (!m.answers || !answered || answered.direction !== 'out' || answered.hash !== m.answers.hash) {
        throw new BundleError('unknown_answer', `the response answers usage bundle ${m.answers?.bundleId ?? '(none)'}, which this collector did not write`);
      }
      const held = this.progress.get();
      // The same response, interrupted: the marks were not raised, so it resumes as it started.
      const resumed = held?.hash === v.hash;
      if (held && !resumed && !o.force) {
        throw conflict(
          'import_in_progress',
          `response ${held.bundleId} (sequence ${held.sequence}) was interrupted while its ACKs were applied: import that file again to complete it first, or import this one with --force to abandon it (the ACKs it applied stay; its snapshot is not applied)`,
          { bundleId: held.bundleId, sequence: held.sequence },
        );
      }
      const p: ImportProgress = resumed ? held! : this.fresh(m, v.hash, o.force);
      // Every record is read and checked before the first write.
      const rest = await this.readAll(work, m, p.ackOnly, onProgress);
      if (held && !resumed) {
        this.db.transaction(() => {
          this.events.append('exchange.import_abandoned', o.actor, held.bundleId, null, {
            sequence: held.sequence, acksApplied: { accepted: held.accepted, rejected: held.rejected }, for: m.bundleId,
          });
          this.progress.put(p);
        })();
      }
      const exportedAt = this.state.bundle(m.answers!.bundleId)!.created_at;
      await applyAcks(
        { db: this.db, clock: this.clock, progress: this.progress, sliceRows: this.ackSliceRows },
        this.records(work, m, PAYLOAD.acks, ackSchema),
        exportedAt,
        p,
        onProgress && ((line) => onProgress({ phase: 'apply', done: line, total: rest.ackLines, unit: 'ACK lines' })),
      );
      onProgress?.flush();
      const kept = this.archivePath(file, 'archive');
      const result = this.db.transaction(() => this.finish(m, v.hash, p, rest, { ...base, forced: p.forced, resumed }, o.actor, kept))();
      result.archivedAs = this.archive(file, 'archive', undefined, kept);
      return result;
    } finally {
      this.policy.invalidate();
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** A response starting: refused as a replay or out of order unless forced, and then ACKs only. */
  private fresh(m: Manifest, hash: string, force: boolean): ImportProgress {
    const replay = m.sequence <= this.state.responseHwm;
    const outOfOrder = m.answers!.sequence <= this.state.answeredHwm;
    if ((replay || outOfOrder) && !force) {
      throw new BundleError(
        replay ? 'replay' : 'out_of_order',
        replay
          ? `response sequence ${m.sequence} is at or below the last applied (${this.state.responseHwm}): refused as a replay; --force applies its ACKs only`
          : `it answers usage bundle ${m.answers!.sequence}, but a response to bundle ${this.state.answeredHwm} was applied already; --force applies its ACKs only`,
      );
    }
    return {
      hash, bundleId: m.bundleId, sequence: m.sequence, ackOnly: replay || outOfOrder, forced: force,
      line: 0, nextRef: 0, accepted: 0, rejected: 0, rejectedReasons: {}, startedAt: this.clock.now(),
    };
  }

  /**
   * Checks every ACK line (letting the event loop run every few thousand) and reads the small
   * payloads into memory, so that a malformed record anywhere is refused before any write.
   */
  private async readAll(work: string, m: Manifest, ackOnly: boolean, onProgress?: OnProgress) {
    let n = 0;
    const pacer = new Pacer();
    const told = () => onProgress?.({ phase: 'check', done: n, total: null, unit: 'ACK lines' });
    told();
    for (const _ of this.records(work, m, PAYLOAD.acks, ackSchema)) if (++n % this.ackSliceRows === 0) told(), await pacer.pause();
    told();
    return {
      ackLines: n,
      snapshots: ackOnly ? [] : [...this.records(work, m, PAYLOAD.entitlements, snapshotSchema)],
      policies: ackOnly ? [] : [...this.records(work, m, PAYLOAD.policy, policySchema)],
      confirmations: ackOnly ? [] : [...this.records(work, m, PAYLOAD.vaConfirmations, vaConfirmationSchema)],
      transferOutcomes: ackOnly ? [] : [...this.records(work, m, PAYLOAD.transferOutcomes, transferOutcomeSchema)],
    };
  }

  /** The last transaction: the rest of the response, the marks raised, the progress gone. */
  private finish(m: Manifest, hash: string, p: ImportProgress, rest: Awaited<ReturnType<ImportService['readAll']>>, r: ImportResult, actor: string, kept: string): ImportResult {
    const now = this.clock.now();
    const touched: UsageKey[] = [];
    r.acks.accepted = p.accepted;
    r.acks.rejected = p.rejected;
    const answered = Number(m.meta.accepted ?? 0) + Number(m.meta.rejected ?? 0);
    r.acks.stale = Math.max(0, answered - r.acks.accepted - r.acks.rejected);
    for (const [reason, count] of Object.entries(p.rejectedReasons)) {
      this.alerts.raise('report_rejected', {
        subject: reason.slice(0, 200),
        severity: 'warning',
        message: `the upstream rejected ${count} report(s): ${reason}`,
        details: { reason, count, bundleId: m.bundleId },
      });
    }
    if (!p.ackOnly) {
      // Answers to transfers first: a refused one is reverted and a confirmed one no longer laid
      // over the snapshots that follow (the upstream made them after applying it).
      r.transfers = this.licenses.transfers.settle(rest.transferOutcomes, 'upstream', touched);
      for (const s of rest.snapshots) {
        if (this.applySnapshot(s, touched, now)) r.entitlements.applied++;
        else r.entitlements.skippedOlder++;
      }
      for (const pol of rest.policies) r.policy = this.policy.apply(pol) ? 'applied' : 'older';
      for (const c of rest.confirmations) {
        if (this.applyConfirmation(c, actor)) r.virtualAccounts.confirmed++;
        else r.virtualAccounts.refused++;
      }
      this.state.responseHwm = m.sequence;
      this.state.answeredHwm = m.answers!.sequence;
      this.state.lastAnsweredHash = m.answers!.hash;
    }
    this.licenses.refreshAlerts(touched);
    this.state.recordBundle({
      id: m.bundleId, direction: 'in', kind: 'response', sequence: m.sequence, hash, file: kept, period: m.period,
      records: r.acks.accepted + r.acks.rejected, created_at: now, answers: m.answers!.bundleId, forced: p.forced ? 1 : 0,
    });
    // Every usage bundle up to the one answered has been carried: their reminders go.
    for (const b of this.state.bundles(1000)) {
      if (b.direction === 'out' && b.sequence <= m.answers!.sequence) this.alerts.clear('export_ready', b.id);
    }
    this.time.observeUpstreamTime(Date.parse(m.createdAt)); // signed by the upstream, yet only believed where it agrees
    const ackOnly = p.ackOnly;
    if (p.forced) this.events.append('exchange.forced', actor, m.bundleId, null, { sequence: m.sequence, answers: m.answers!.bundleId, ackOnly });
    this.events.append('exchange.imported', actor, m.bundleId, null, {
      sequence: m.sequence, answers: m.answers!.bundleId, acks: r.acks, entitlements: r.entitlements, policy: r.policy,
      virtualAccounts: r.virtualAccounts, ...(r.transfers.confirmed || r.transfers.refused ? { transfers: r.transfers } : {}), ackOnly, hash, ...(r.resumed ? { resumed: true } : {}),
    });
    this.progress.clear();
    r.status = 'applied';
    return r;
  }

  /** The upstream rotated its key: pin the new one, keep the old for bundles in transit. */
  private applyRotation(file: string, m: Manifest, hash: string, actor: string): ImportResult {
    const result: ImportResult = {
      status: 'already_imported', bundleId: m.bundleId, sequence: m.sequence, answers: null, forced: false,
      acks: { accepted: 0, rejected: 0, stale: 0 }, entitlements: { applied: 0, skippedOlder: 0 }, policy: 'none',
      virtualAccounts: { confirmed: 0, refused: 0 }, transfers: { confirmed: 0, refused: 0 }, archivedAs: null, resumed: false,
    };
    if (this.state.bundleByHash(hash)) return result;
    this.checkBinding(m);
    // Only the active key may hand trust on (the upstream side requires the same).
    if (this.state.upstreamKey(m.signer.keyId)?.status !== 'active') {
      throw new BundleError('retired_signer', `the key rotation is signed by ${m.signer.keyId}, which is not the active upstream key`);
    }
    const rot = checkRotation(m, m.collectorId);
    const now = this.clock.now();
    const kept = this.archivePath(file, 'archive');
    this.db.transaction(() => {
      this.state.pinUpstreamKey(rot.newKey, now);
      this.state.retireUpstreamKey(m.signer.keyId, now, now + rot.graceDays * 86_400_000, rot.fromSequence);
      this.state.recordBundle({ id: m.bundleId, direction: 'in', kind: 'key-rotation', sequence: m.sequence, hash, file: kept, period: null, records: 0, created_at: now, answers: null, forced: 0 });
      this.events.append('exchange.upstream_key_rotated', actor, rot.newKeyId, null, { from: m.signer.keyId, to: rot.newKeyId, fromSequence: rot.fromSequence, graceDays: rot.graceDays });
    })();
    result.status = 'applied';
    result.archivedAs = this.archive(file, 'archive', undefined, kept);
    return result;
  }

  private checkBinding(m: Manifest): void {
    if (m.collectorId !== this.identity.collectorId) {
      throw new BundleError('wrong_collector', `the response is for collector ${m.collectorId}, not this one (${this.identity.collectorId})`);
    }
    const account = this.state.upstreamAccountId;
    if (account && m.accountId !== account) throw new BundleError('wrong_account', `the response is bound to account ${m.accountId}, not ${account}`);
  }

  /** Reads one extracted payload, checking each record and the record count the manifest states. */
  private *records<T>(work: string, m: Manifest, name: string, schema: z.ZodType<T>): Generator<T> {
    const listed = m.payloads.find((p) => p.name === name);
    if (!listed) return;
    const file = join(work, name.replace(/\.gz$/, ''));
    let n = 0;
    for (const line of readLinesSync(file)) {
      n++;
      let raw: unknown;
      try {
        raw = name === PAYLOAD.acks ? JSON.parse(line) : parseStrictJson(line);
      } catch (e) {
        throw new BundleError('malformed_payload', `${name} line ${n}: ${(e as Error).message}`);
      }
      const v = schema.safeParse(raw);
      if (!v.success) throw new BundleError('malformed_payload', `${name} line ${n}: ${v.error.issues[0]!.path.join('.')}: ${v.error.issues[0]!.message}`);
      yield v.data;
    }
    if (n !== listed.records) throw new BundleError('payload_mismatch', `${name} holds ${n} records; the manifest says ${listed.records}`);
  }

  /**
   * An entitlement snapshot replaces a VA's lines, unless it is older than what is held. Lines
   * the Cisco upstream gave (another lineage, numbered apart) are replaced whatever the version.
   */
  private applySnapshot(s: z.infer<typeof snapshotSchema>, touched: UsageKey[], now: number): boolean {
    const held = this.db.prepare('SELECT version, lineage FROM entitlement_versions WHERE va_id = ?').get(s.vaId) as { version: number; lineage: string } | undefined;
    if (held && held.lineage === 'outpost' && s.version <= held.version) return false;
    let va = this.accounts.repo.get(s.vaId);
    if (!va) {
      // A VA the upstream made: it arrives with its first snapshot.
      const clash = this.accounts.repo.byName(s.vaName);
      const name = clash ? `${s.vaName} (${s.vaId.slice(-6)})` : s.vaName;
      this.accounts.repo.insert({ id: s.vaId, name, description: 'From the upstream', origin: 'upstream', created_at: now, updated_at: now });
      va = this.accounts.repo.get(s.vaId)!;
    }
    const before = this.licenses.entitlements.byVa(va.id).map((l) => l.tag);
    this.db.prepare('DELETE FROM entitlements WHERE va_id = ?').run(va.id);
    for (const l of s.lines) {
      this.licenses.entitlements.insert({
        id: newId('ent', now), va_id: va.id, tag: l.tag, display_name: l.displayName, kind: l.kind, quantity: l.quantity,
        starts_at: Date.parse(l.startsAt), ends_at: l.endsAt ? Date.parse(l.endsAt) : null, created_at: now,
      });
    }
    this.db
      .prepare("INSERT INTO entitlement_versions (va_id, version, lineage) VALUES (?, ?, 'outpost') ON CONFLICT (va_id) DO UPDATE SET version = excluded.version, lineage = 'outpost'")
      .run(va.id, s.version);
    // A snapshot made before the upstream saw a transfer must not erase it.
    this.licenses.transfers.overlay(va.id, touched);
    for (const tag of new Set([...before, ...s.lines.map((l) => l.tag)])) touched.push({ vaId: va.id, tag });
    this.events.append('entitlements.snapshot_applied', 'upstream', va.id, va.id, { version: s.version, lines: s.lines.length });
    return true;
  }

  private applyConfirmation(c: z.infer<typeof vaConfirmationSchema>, actor: string): boolean {
    const va = this.accounts.repo.get(c.vaId);
    if (!va) return c.status === 'confirmed';
    if (c.status === 'refused') {
      this.events.append('va.refused', 'upstream', va.id, va.id, { reason: c.reason });
      return false;
    }
    const other = this.accounts.repo.byName(c.name);
    const name = other && other.id !== va.id ? va.name : c.name;
    this.db.prepare("UPDATE virtual_accounts SET origin = 'upstream', name = ?, updated_at = ? WHERE id = ?").run(name, this.clock.now(), va.id);
    if (va.origin !== 'upstream') this.events.append('va.confirmed', actor, va.id, va.id, { name });
    return true;
  }

  /** Moves a file from the inbox (or copies one from elsewhere) into archive/ or rejected/. */
  archive(file: string, folder: 'archive' | 'rejected', reason?: string, target = this.archivePath(file, folder)): string {
    mkdirSync(dirname(target), { recursive: true });
    if (resolve(dirname(file)) === resolve(this.bundleDir, 'inbox')) renameSync(file, target);
    else copyFileSync(file, target);
    if (reason) writeFileSync(`${target}.reason`, reason + '\n');
    return target;
  }

  /** Where archive() will put `file`: known before the bundle is recorded, so its row names the copy kept. */
  archivePath(file: string, folder: 'archive' | 'rejected'): string {
    const dir = join(this.bundleDir, folder);
    const target = join(dir, basename(file));
    return existsSync(target) ? join(dir, `${Date.now()}-${basename(file)}`) : target;
  }
}
