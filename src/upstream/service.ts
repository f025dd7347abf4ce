import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { newId } from '../shared/ids.js';
import { fingerprint } from '../shared/ed25519.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import { commitKey, nextKey, type Identity } from '../identity/identity.js';
import { checkRotation, rotationMeta } from '../exchange/rotation.js';
import { verifyBundle, readManifest, BundleError, selfSignedKey, type SignerHint } from '../exchange/read.js';
import { identitySigner, writeBundle, type BundleSigner } from '../exchange/write.js';
import { BUNDLE_EXTENSION } from '../exchange/manifest.js';
import type { EntitlementLineRecord, EntitlementSnapshotRecord, PolicyRecord } from '../exchange/records.js';

export class UpstreamError extends AppError {
  constructor(code: string, message: string) {
    super(400, code, message);
  }
}

export interface CollectorRow {
  id: string;
  /** Its small integer key, carried by the reports it sends. */
  num: number;
  account_id: string;
  public_key: string;
  key_id: string;
  usage_hwm: number;
  /** 0 until a restore of the collector's is announced (upstream/epochs.ts). */
  epoch: number;
  out_seq: number;
  last_answered_hash: string | null;
  added_at: number;
}

export interface EntitlementInput {
  account: string;
  va: string;
  tag: string;
  displayName: string;
  kind: 'perpetual' | 'subscription' | 'term' | 'unlimited';
  quantity: number;
  startsAt: number;
  endsAt: number | null;
}

const DEFAULT_POLICY: PolicyRecord = { version: 1, reportingIntervalDays: 30, ackDueDays: 90 };

/**
 * The reference upstream authority: the accounts, the collectors it has enrolled, the
 * entitlements it sells. It shares only the exchange format with the collector.
 */
export class UpstreamService {
  readonly signer: BundleSigner;
  constructor(
    readonly db: Db,
    readonly clock: Clock,
    readonly identity: Identity,
    readonly outDir: string,
    readonly dataDir: string,
  ) {
    this.signer = identitySigner(identity);
  }

  event(type: string, subject: string | null, details: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO events (at, type, subject, details) VALUES (?, ?, ?, ?)').run(this.clock.now(), type, subject, JSON.stringify(details));
  }

  account(name: string, create: boolean): { id: string; name: string } {
    const row = this.db.prepare('SELECT id, name FROM accounts WHERE name = ? OR id = ?').get(name, name) as { id: string; name: string } | undefined;
    if (row) return row;
    if (!create) throw new UpstreamError('unknown_account', `no account named ${name}`);
    const id = `acc_${randomUUID()}`;
    this.db.prepare('INSERT INTO accounts (id, name, created_at, num) VALUES (?, ?, ?, (SELECT coalesce(max(num), 0) + 1 FROM accounts))').run(id, name, this.clock.now());
    this.event('account.created', id, { name });
    return { id, name };
  }

  collector(id: string): CollectorRow | undefined {
    return this.db.prepare('SELECT * FROM collectors WHERE id = ?').get(id) as CollectorRow | undefined;
  }

  policy(): PolicyRecord {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'policy'").get() as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as PolicyRecord) : DEFAULT_POLICY;
  }

  /**
   * Enrollment: reads a collector's self-signed request and, once the operator has confirmed
   * its fingerprint out of band, pins its key to an account and answers with our own key.
   */
  async addCollector(requestFile: string, o: { account: string; fingerprint?: string | undefined }): Promise<{ collectorId: string; fingerprint: string; responseFile?: string; pinned: boolean }> {
    let presented: Buffer | undefined;
    const v = await verifyBundle(requestFile, { kinds: ['enrollment-request'], keyFor: (m) => (presented = selfSignedKey(m)) });
    const fp = fingerprint(presented!);
    const m = v.manifest;
    if (!o.fingerprint) return { collectorId: m.collectorId, fingerprint: fp, pinned: false };
    if (o.fingerprint.toLowerCase() !== fp) {
      throw new UpstreamError('fingerprint_mismatch', `the request's key has fingerprint ${fp}, not ${o.fingerprint}: do not pin it`);
    }
    const existing = this.collector(m.collectorId);
    if (existing && existing.public_key !== presented!.toString('base64')) {
      throw new UpstreamError('collector_exists', `collector ${m.collectorId} is already enrolled with another key; a replaced key needs a new collector identity`);
    }
    const account = this.db.transaction(() => {
      const acc = this.account(o.account, true);
      if (!existing) {
        this.db
          .prepare('INSERT INTO collectors (id, account_id, public_key, key_id, added_at, num) VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(num), 0) + 1 FROM collectors))')
          .run(m.collectorId, acc.id, presented!.toString('base64'), fp, this.clock.now());
        this.event('collector.enrolled', m.collectorId, { account: acc.id, fingerprint: fp });
      }
      return acc;
    })();
    const now = this.clock.now();
    mkdirSync(this.outDir, { recursive: true });
    const out = await writeBundle(
      join(this.outDir, `enrollment-${m.collectorId}${BUNDLE_EXTENSION}`),
      {
        kind: 'enrollment-response', bundleId: newId('bun', now), collectorId: m.collectorId, accountId: account.id, sequence: 0,
        lastAnsweredHash: v.hash, answers: { bundleId: m.bundleId, sequence: m.sequence, hash: v.hash }, period: null,
        createdAt: new Date(now).toISOString(), eventChainHead: null,
        meta: { upstreamId: this.identity.collectorId, publicKey: this.identity.publicKeyB64, accountId: account.id, accountName: account.name },
      },
      [],
      this.signer,
    );
    return { collectorId: m.collectorId, fingerprint: fp, responseFile: out.path, pinned: true };
  }

  addEntitlement(e: EntitlementInput): { vaId: string; version: number } {
    return this.db.transaction(() => {
      const acc = this.account(e.account, true);
      let va = this.db.prepare('SELECT id FROM virtual_accounts WHERE account_id = ? AND (name = ? OR id = ?)').get(acc.id, e.va, e.va) as { id: string } | undefined;
      if (!va) {
        va = { id: newId('va', this.clock.now()) };
        this.db.prepare('INSERT INTO virtual_accounts (id, account_id, name, created_at) VALUES (?, ?, ?, ?)').run(va.id, acc.id, e.va, this.clock.now());
      }
      this.db.prepare('INSERT INTO tags (tag, display_name) VALUES (?, ?) ON CONFLICT (tag) DO NOTHING').run(e.tag, e.displayName);
      this.db
        .prepare('INSERT INTO entitlements (id, va_id, tag, display_name, kind, quantity, starts_at, ends_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(newId('ent', this.clock.now()), va.id, e.tag, e.displayName, e.kind, e.quantity, e.startsAt, e.endsAt, this.clock.now());
      this.db.prepare('UPDATE virtual_accounts SET version = version + 1 WHERE id = ?').run(va.id);
      const version = (this.db.prepare('SELECT version FROM virtual_accounts WHERE id = ?').get(va.id) as { version: number }).version;
      this.event('entitlement.added', va.id, { tag: e.tag, quantity: e.quantity, version });
      return { vaId: va.id, version };
    })();
  }

  addTag(tag: string, displayName: string): void {
    this.db.prepare('INSERT INTO tags (tag, display_name) VALUES (?, ?) ON CONFLICT (tag) DO UPDATE SET display_name = excluded.display_name').run(tag, displayName);
  }

  snapshots(accountId: string): EntitlementSnapshotRecord[] {
    const vas = this.db.prepare('SELECT id, name, version FROM virtual_accounts WHERE account_id = ? AND version > 0 ORDER BY id').all(accountId) as {
      id: string; name: string; version: number;
    }[];
    const lines = this.db.prepare('SELECT * FROM entitlements WHERE va_id = ? ORDER BY tag, starts_at');
    return vas.map((va) => ({
      vaId: va.id,
      vaName: va.name,
      version: va.version,
      lines: (lines.all(va.id) as { tag: string; display_name: string; kind: EntitlementLineRecord['kind']; quantity: number; starts_at: number; ends_at: number | null }[]).map((l) => ({
        tag: l.tag, displayName: l.display_name, kind: l.kind, quantity: l.quantity, startsAt: new Date(l.starts_at).toISOString(),
        endsAt: l.ends_at === null ? null : new Date(l.ends_at).toISOString(),
      })),
    }));
  }

  /** The collector's key for a usage bundle: unknown collectors and keys are refused. */
  collectorKeyFor(m: SignerHint): Buffer {
    const c = this.collector(m.collectorId);
    if (!c) throw new BundleError('unknown_collector', `collector ${m.collectorId} is not enrolled here`);
    if (c.key_id === m.keyId) return Buffer.from(c.public_key, 'base64');
    const old = this.db.prepare('SELECT * FROM collector_keys WHERE key_id = ? AND collector_id = ?').get(m.keyId, c.id) as
      | { public_key: string; until_sequence: number; grace_until: number; retired_at: number }
      | undefined;
    if (!old) throw new BundleError('unknown_signer', `the bundle is signed by ${m.keyId}, not by collector ${c.id}'s key ${c.key_id}`);
    if (m.sequence >= old.until_sequence || this.clock.now() > old.grace_until) {
      throw new BundleError(
        'retired_signer',
        `the bundle (sequence ${m.sequence}) is signed by ${m.keyId}, retired on ${new Date(old.retired_at).toISOString()}: only bundles numbered below ${old.until_sequence} may carry it, until ${new Date(old.grace_until).toISOString()}`,
      );
    }
    return Buffer.from(old.public_key, 'base64');
  }

  /** A collector rotated its key: verify the statement with its current key and the new one, then switch. */
  async acceptCollectorRotation(file: string): Promise<{ collectorId: string; from: string; to: string; fromSequence: number; status: 'applied' | 'already_applied' }> {
    // A statement applied before is a no-op, even once the old key's grace has run out (a
    // connected collector sends its last statement again when it cannot know it arrived). The
    // claim is unverified, and only ever answered with "already applied": it changes nothing.
    const claimed = (await readManifest(file)).manifest;
    const known = claimed.kind === 'key-rotation' ? this.collector(claimed.collectorId) : undefined;
    if (known && known.key_id === claimed.meta.newKeyId) {
      return { collectorId: known.id, from: claimed.signer.keyId, to: known.key_id, fromSequence: Number(claimed.meta.fromSequence), status: 'already_applied' };
    }
    const v = await verifyBundle(file, { kinds: ['key-rotation'], keyFor: (m) => this.collectorKeyFor(m) });
    const m = v.manifest;
    const c = this.collector(m.collectorId)!;
    const rot = checkRotation(m, m.collectorId);
    if (c.key_id === rot.newKeyId) return { collectorId: c.id, from: m.signer.keyId, to: rot.newKeyId, fromSequence: rot.fromSequence, status: 'already_applied' };
    if (c.key_id !== m.signer.keyId) throw new BundleError('retired_signer', 'the statement is signed by a key that is no longer the collector\'s current one');
    const now = this.clock.now();
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO collector_keys (key_id, collector_id, public_key, until_sequence, grace_until, retired_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(c.key_id, c.id, c.public_key, rot.fromSequence, now + rot.graceDays * 86_400_000, now);
      this.db.prepare('UPDATE collectors SET public_key = ?, key_id = ? WHERE id = ?').run(rot.newKey.toString('base64'), rot.newKeyId, c.id);
      this.event('collector.key_rotated', c.id, { from: c.key_id, to: rot.newKeyId, fromSequence: rot.fromSequence, graceDays: rot.graceDays });
    })();
    return { collectorId: c.id, from: m.signer.keyId, to: rot.newKeyId, fromSequence: rot.fromSequence, status: 'applied' };
  }

  /** Rotates the upstream's own key: one statement per enrolled collector, signed by both keys. */
  async rotateOwnKey(graceDays: number): Promise<{ from: string; to: string; statements: string[] }> {
    const next = nextKey();
    const from = this.identity.fingerprint;
    const collectors = this.db.prepare('SELECT * FROM collectors ORDER BY id').all() as CollectorRow[];
    const statements: string[] = [];
    mkdirSync(this.outDir, { recursive: true });
    for (const c of collectors) {
      const now = this.clock.now();
      const sequence = c.out_seq + 1;
      const meta = rotationMeta({ subjectId: c.id, oldKeyId: from, newKey: next.publicKey, fromSequence: sequence + 1, graceDays, signWithNew: next.signDetached });
      const out = await writeBundle(
        join(this.outDir, `key-rotation-${c.id.slice(0, 12)}-seq${String(sequence).padStart(6, '0')}${BUNDLE_EXTENSION}`),
        {
          kind: 'key-rotation', bundleId: newId('bun', now), collectorId: c.id, accountId: c.account_id, sequence, lastAnsweredHash: c.last_answered_hash,
          answers: null, period: null, createdAt: new Date(now).toISOString(), eventChainHead: null, meta,
        },
        [],
        this.signer,
      );
      this.db.transaction(() => {
        this.db.prepare('UPDATE collectors SET out_seq = ? WHERE id = ?').run(sequence, c.id);
        // Recorded, so a connected collector can fetch its statement (GET /sync/v1/rotation).
        this.db
          .prepare("INSERT INTO bundles (id, collector_id, direction, kind, sequence, hash, file, created_at) VALUES (?, ?, 'out', 'key-rotation', ?, ?, ?, ?)")
          .run(out.manifest.bundleId, c.id, sequence, out.hash, out.path, now);
      })();
      statements.push(out.path);
    }
    commitKey(this.dataDir, 'upstream', this.identity, next);
    this.event('upstream.key_rotated', this.identity.collectorId, { from, to: this.identity.fingerprint, graceDays, statements: statements.length });
    return { from, to: this.identity.fingerprint, statements };
  }
}
