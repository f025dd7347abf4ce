import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { countReports } from './report-writer.js';
import { newId } from '../shared/ids.js';
import { verifyBundle, streamPayloadLines, BundleError } from '../exchange/read.js';
import { writeBundle } from '../exchange/write.js';
import { BUNDLE_EXTENSION, type Manifest } from '../exchange/manifest.js';
import { parseStrictJson } from '../exchange/strict-json.js';
import { PAYLOAD, type UsageSummaryRecord, type VaConfirmationRecord } from '../exchange/records.js';
import { applyTransfers, transferRecordSchema, type TransferInput } from './transfers.js';
import type { UpstreamService } from './service.js';
import { AppError } from '../shared/errors.js';
import { receiveCheckpoint, type CheckpointReceipt } from './checkpoints.js';
import { checkEpoch, recordEpoch } from './epochs.js';
import type { OnProgress } from '../shared/progress.js';

export interface ProcessResult {
  usageBundle: string;
  sequence: number;
  reports: { accepted: number; rejected: number; new: number; replaced: number; alreadyCounted: number };
  responseFile: string;
  responseSequence: number;
  forced: boolean;
  /** The bundle had been processed before (same id and hash): this is the response written then, counted nothing now. */
  alreadyProcessed: boolean;
  /** The signed checkpoint of the collector's audit trail the bundle carried (null: none). */
  checkpoint?: CheckpointReceipt;
}

/** A usage bundle already recorded as processed, and the response that answers it. */
export interface ProcessedBundle {
  bundleId: string;
  collectorId: string;
  sequence: number;
  hash: string;
  responseFile: string | null;
  responseSequence: number | null;
}

/** What the store knows of a usage bundle id: processed (with its answer), or nothing. */
export function processedBundle(db: UpstreamService['db'], bundleId: string): ProcessedBundle | undefined {
  const row = db
    .prepare(
      `SELECT i.id AS bundleId, i.collector_id AS collectorId, i.sequence, i.hash, o.file AS responseFile, o.sequence AS responseSequence
       FROM bundles i LEFT JOIN bundles o ON o.id = (
         SELECT id FROM bundles WHERE direction = 'out' AND kind = 'response' AND answers = i.id ORDER BY sequence DESC LIMIT 1)
       WHERE i.id = ? AND i.direction = 'in' AND i.kind = 'usage'`,
    )
    .get(bundleId) as ProcessedBundle | undefined;
  return row;
}

export const bundleConflict = (bundleId: string) =>
  new AppError(409, 'bundle_conflict', `a different usage bundle with id ${bundleId} was received before: one id names one bundle`);

/**
 * Processes a usage bundle: verifies it against the collector's pinned key and its account,
 * counts each report once (keyed by account, UDI and report id; a grown RUM report replaces
 * its earlier copy), rejects with a reason what it cannot accept, and writes the signed
 * response. The reports are counted in one transaction before the response is written; if
 * writing it fails, processing the bundle again (its sequence was not yet recorded) counts
 * nothing twice and answers it.
 */
export async function processUsageBundle(up: UpstreamService, file: string, o: { force: boolean; onProgress?: OnProgress }): Promise<ProcessResult> {
  mkdirSync(up.outDir, { recursive: true });
  const { db } = up;
  const v = await verifyBundle(file, { kinds: ['usage'], keyFor: (m) => up.collectorKeyFor(m) });
  const m = v.manifest;
  const total = m.payloads.find((p) => p.name === PAYLOAD.reports)?.records ?? 0;
  const report = progressOf(total, o.onProgress);
  const c = up.collector(m.collectorId)!;
  if (m.accountId !== c.account_id) throw new BundleError('wrong_account', `the bundle is bound to account ${m.accountId}; collector ${c.id} belongs to ${c.account_id}`);
  // The same bundle again (a reply lost on the way, a file processed twice): its earlier
  // response answers it, and nothing is counted again. --force processes it anew.
  const before = processedBundle(db, m.bundleId);
  if (before && before.hash !== v.hash) throw bundleConflict(m.bundleId);
  if (before && before.responseFile && !o.force) {
    const counted = db
      .prepare("SELECT details FROM events WHERE type IN ('usage.processed', 'usage.processed_forced') AND subject = ? AND json_extract(details, '$.bundle') = ? ORDER BY id DESC LIMIT 1")
      .get(c.id, m.bundleId) as { details: string } | undefined;
    const r = counted ? (JSON.parse(counted.details) as Partial<ProcessResult['reports']>) : {};
    return {
      usageBundle: m.bundleId, sequence: m.sequence, forced: false, alreadyProcessed: true, responseFile: before.responseFile, responseSequence: before.responseSequence!,
      reports: { accepted: r.accepted ?? 0, rejected: r.rejected ?? 0, new: r.new ?? 0, replaced: r.replaced ?? 0, alreadyCounted: r.alreadyCounted ?? 0 },
    };
  }
  const epoch = checkEpoch(up, c, m);
  if (m.sequence <= epoch.hwm && !o.force) {
    throw new BundleError('replay', `usage bundle sequence ${m.sequence} is at or below the last processed from this collector (${epoch.hwm}): refused as a replay`);
  }
  const now = up.clock.now();
  const tags = new Set((db.prepare('SELECT tag FROM tags').all() as { tag: string }[]).map((r) => r.tag));

  // Devices: a UDI already bound to another account is not this account's to report, whether or
  // not this bundle carries its device (a later part of a sync carries only devices it has not
  // sent before): every UDI the store holds for other accounts, and those the payload's devices
  // answer to.
  const foreign = new Set((db.prepare('SELECT udi FROM devices WHERE account_id != ?').pluck().all(c.account_id) as string[]));
  const deviceOwner = db.prepare('SELECT account_id FROM devices WHERE udi = ?');
  const devices: { udi: string; deviceId: string; vaId: string; hostname: string }[] = [];
  for (const line of await records(file, m, PAYLOAD.devices)) {
    const d = line as { udi: string; udis: string[]; deviceId: string; vaId: string; hostname: string };
    for (const u of d.udis?.length ? d.udis : [d.udi]) {
      const owner = deviceOwner.get(u) as { account_id: string } | undefined;
      if (owner && owner.account_id !== c.account_id) foreign.add(d.udi);
    }
    devices.push({ udi: d.udi, deviceId: d.deviceId, vaId: d.vaId, hostname: String(d.hostname ?? '') });
  }
  const proposals = (await records(file, m, PAYLOAD.virtualAccounts)) as { vaId: string; name: string }[];
  // Format version 2: license transfers, checked whole before anything is applied.
  const carriesTransfers = m.payloads.some((p) => p.name === PAYLOAD.transfers);
  const transfers: TransferInput[] = (await records(file, m, PAYLOAD.transfers)).map((raw, i) => {
    const v = transferRecordSchema.safeParse(raw);
    if (!v.success) throw new BundleError('malformed_payload', `${PAYLOAD.transfers} line ${i + 1}: ${v.error.issues[0]!.path.join('.')}: ${v.error.issues[0]!.message}`);
    return v.data;
  });
  const usage = carriesTransfers ? ((await records(file, m, PAYLOAD.usageSummary)) as UsageSummaryRecord[]) : [];

  // Reports: each counted once per account, UDI and report id, in one transaction.
  const account = (db.prepare('SELECT num FROM accounts WHERE id = ?').get(c.account_id) as { num: number }).num;
  report(0);
  const counts = await countReports(db, file, m, { account, collector: c.num, now }, { tags: [...tags], foreign: [...foreign] }, report);
  report(total, true);
  const acks = counts.acks;

  // VAs first (a transfer may name a VA proposed in this same bundle), then transfers, then
  // the snapshots, which then hold what the transfers moved.
  const [confirmations, outcomes] = db.transaction(() => [applyVaProposals(up, c.account_id, proposals), applyTransfers(up, c.id, c.account_id, transfers, usage)] as const)();

  const responseSequence = c.out_seq + 1;
  const snapshots = up.snapshots(c.account_id);
  const responseId = newId('bun', now);
  const response = await writeBundle(
    join(up.outDir, `response-${m.collectorId.slice(0, 12)}-seq${String(responseSequence).padStart(6, '0')}${BUNDLE_EXTENSION}`),
    {
      kind: 'response', bundleId: responseId, collectorId: c.id, accountId: c.account_id, sequence: responseSequence,
      lastAnsweredHash: c.last_answered_hash, answers: { bundleId: m.bundleId, sequence: m.sequence, hash: v.hash }, period: m.period,
      createdAt: new Date(now).toISOString(), eventChainHead: null,
      meta: { upstreamId: up.identity.collectorId, accepted: counts.accepted, rejected: counts.rejected },
    },
    [
      { name: PAYLOAD.acks, records: acks },
      { name: PAYLOAD.entitlements, records: snapshots },
      { name: PAYLOAD.policy, records: [up.policy()] },
      { name: PAYLOAD.vaConfirmations, records: confirmations },
      // Only in answer to a bundle that carried transfers: a version 1 collector gets a version 1 response.
      ...(carriesTransfers ? [{ name: PAYLOAD.transferOutcomes, records: outcomes }] : []),
    ],
    up.signer,
  );

  const result = db.transaction(() => {
    const upsertDevice = db.prepare(
      `INSERT INTO devices (udi, account_id, collector_id, device_id, va_id, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (udi) DO UPDATE SET collector_id = excluded.collector_id, device_id = excluded.device_id, va_id = excluded.va_id,
         hostname = excluded.hostname, updated_at = excluded.updated_at WHERE devices.account_id = excluded.account_id`,
    );
    for (const d of devices) if (!foreign.has(d.udi)) upsertDevice.run(d.udi, c.account_id, c.id, d.deviceId, d.vaId, d.hostname, now);
    for (const s of snapshots) db.prepare('UPDATE virtual_accounts SET announced = 1 WHERE id = ?').run(s.vaId);
    db.prepare('UPDATE collectors SET usage_hwm = max(usage_hwm, ?), out_seq = ?, last_answered_hash = coalesce(?, last_answered_hash) WHERE id = ?').run(
      m.sequence, responseSequence, m.lastAnsweredHash, c.id,
    );
    // After the update: a restore sets the sequence back to this bundle's, which max() would not.
    if (epoch.newEpoch) recordEpoch(up, c, epoch.newEpoch, m.bundleId, m.sequence);
    const record = db.prepare('INSERT OR IGNORE INTO bundles (id, collector_id, direction, kind, sequence, hash, file, created_at, forced, answers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    record.run(m.bundleId, c.id, 'in', 'usage', m.sequence, v.hash, file, now, o.force ? 1 : 0, null);
    record.run(responseId, c.id, 'out', 'response', responseSequence, response.hash, response.path, now, 0, m.bundleId);
    const res: ProcessResult = {
      usageBundle: m.bundleId, sequence: m.sequence, forced: o.force, alreadyProcessed: false, responseFile: response.path, responseSequence,
      reports: { accepted: counts.accepted, rejected: counts.rejected, new: counts.fresh, replaced: counts.merged - counts.fresh, alreadyCounted: counts.accepted - counts.merged },
      checkpoint: receiveCheckpoint(up, m, now),
    };
    up.event(o.force ? 'usage.processed_forced' : 'usage.processed', c.id, { ...res.reports, sequence: m.sequence, bundle: m.bundleId });
    return res;
  })();
  return result;
}

/**
 * Reports read against the manifest's count: the first step says how many there are, the last
 * that all were counted, and between them each tenth of the way and otherwise at most one step
 * per interval, so a stream or a log shows movement without a line per batch.
 */
function progressOf(total: number, onProgress: OnProgress | undefined, intervalMs = 200, now: () => number = Date.now): (done: number, last?: boolean) => void {
  if (!onProgress) return () => {};
  let at = -Infinity;
  let tenth = -1;
  let sent = -1;
  return (done, last = false) => {
    const t = total > 0 ? Math.floor((done * 10) / total) : 0;
    if (done === sent || (!last && t <= tenth && now() - at < intervalMs)) return;
    at = now();
    tenth = t;
    sent = done;
    onProgress({ phase: 'count', done, total, unit: 'reports' });
  };
}

/** A small payload's records, each line parsed strictly (a duplicate key is refused). */
async function records(file: string, m: Manifest, name: string): Promise<unknown[]> {
  const out: unknown[] = [];
  await streamPayloadLines(file, m, name, (lines, before) => {
    for (let i = 0; i < lines.length; i++) {
      try {
        out.push(parseStrictJson(lines[i]!));
      } catch (e) {
        throw new BundleError('malformed_payload', `${name} line ${before + i + 1}: ${(e as Error).message}`);
      }
    }
  });
  return out;
}

/**
 * The upstream owns the VA list; a collector's local VAs arrive as proposals. A proposal is
 * confirmed under its own id, renames a VA the upstream knows by that id, or adopts an
 * upstream VA of the same name that no collector has been told about yet (so entitlements
 * recorded before the first exchange land in the collector's VA). A name held by another,
 * announced VA is refused with the reason.
 */
function applyVaProposals(up: UpstreamService, accountId: string, proposals: Iterable<{ vaId: string; name: string }>): VaConfirmationRecord[] {
  const { db } = up;
  const now = up.clock.now();
  const out: VaConfirmationRecord[] = [];
  const byId = db.prepare('SELECT id, name FROM virtual_accounts WHERE id = ? AND account_id = ?');
  const byName = db.prepare('SELECT id, announced FROM virtual_accounts WHERE name = ? AND account_id = ?');
  for (const p of proposals) {
    const known = byId.get(p.vaId, accountId) as { id: string; name: string } | undefined;
    const clash = byName.get(p.name, accountId) as { id: string; announced: number } | undefined;
    if (clash && clash.id !== p.vaId) {
      if (known || clash.announced) {
        out.push({ vaId: p.vaId, name: p.name, status: 'refused', reason: `the account already has a virtual account named ${p.name}` });
        continue;
      }
      // Adopt: the upstream's unannounced VA takes the collector's id, with its entitlements.
      db.prepare("UPDATE virtual_accounts SET name = name || ' (adopting)' WHERE id = ?").run(clash.id);
      db.prepare('INSERT INTO virtual_accounts (id, account_id, name, version, created_at) SELECT ?, account_id, ?, version, ? FROM virtual_accounts WHERE id = ?').run(
        p.vaId, p.name, now, clash.id,
      );
      db.prepare('UPDATE entitlements SET va_id = ? WHERE va_id = ?').run(p.vaId, clash.id);
      db.prepare('UPDATE devices SET va_id = ? WHERE va_id = ?').run(p.vaId, clash.id);
      db.prepare('DELETE FROM virtual_accounts WHERE id = ?').run(clash.id);
      up.event('va.adopted', p.vaId, { from: clash.id, name: p.name });
    } else if (!known) {
      db.prepare('INSERT INTO virtual_accounts (id, account_id, name, created_at) VALUES (?, ?, ?, ?)').run(p.vaId, accountId, p.name, now);
      up.event('va.confirmed', p.vaId, { name: p.name });
    } else if (known.name !== p.name) {
      db.prepare('UPDATE virtual_accounts SET name = ? WHERE id = ?').run(p.name, p.vaId);
      up.event('va.renamed', p.vaId, { from: known.name, to: p.name });
    }
    out.push({ vaId: p.vaId, name: p.name, status: 'confirmed', reason: null });
  }
  return out;
}
