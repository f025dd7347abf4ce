import { join } from 'node:path';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { newId } from '../shared/ids.js';
import { verifyBundle, readLinesSync, BundleError } from '../exchange/read.js';
import { writeBundle } from '../exchange/write.js';
import { BUNDLE_EXTENSION } from '../exchange/manifest.js';
import { parseStrictJson } from '../exchange/strict-json.js';
import { PAYLOAD, type AckRecord, type VaConfirmationRecord } from '../exchange/records.js';
import type { UpstreamService } from './service.js';

export interface ProcessResult {
  usageBundle: string;
  sequence: number;
  reports: { accepted: number; rejected: number; new: number; replaced: number; alreadyCounted: number };
  responseFile: string;
  responseSequence: number;
  forced: boolean;
}

const CHUNK = 5000;

/**
 * Processes a usage bundle: verifies it against the collector's pinned key and its account,
 * counts each report once (keyed by account, UDI and report id; a grown RUM report replaces
 * its earlier copy), rejects with a reason what it cannot accept, and writes the signed
 * response. Reports are staged in an unindexed table and merged in key order, which is
 * several times faster than inserting into the keyed table in arrival order.
 */
export async function processUsageBundle(up: UpstreamService, file: string, o: { force: boolean }): Promise<ProcessResult> {
  mkdirSync(up.outDir, { recursive: true });
  const work = mkdtempSync(join(up.outDir, '.process-'));
  const { db } = up;
  try {
    const v = await verifyBundle(file, { kinds: ['usage'], keyFor: (m) => up.collectorKeyFor(m), extractTo: work });
    const m = v.manifest;
    const c = up.collector(m.collectorId)!;
    if (m.accountId !== c.account_id) throw new BundleError('wrong_account', `the bundle is bound to account ${m.accountId}; collector ${c.id} belongs to ${c.account_id}`);
    if (m.sequence <= c.usage_hwm && !o.force) {
      throw new BundleError('replay', `usage bundle sequence ${m.sequence} is at or below the last processed from this collector (${c.usage_hwm}): refused as a replay`);
    }
    const now = up.clock.now();
    const tags = new Set((db.prepare('SELECT tag FROM tags').all() as { tag: string }[]).map((r) => r.tag));

    // Devices: a UDI already bound to another account is not this account's to report.
    const foreign = new Set<string>();
    const deviceOwner = db.prepare('SELECT account_id FROM devices WHERE udi = ?');
    const devices: { udi: string; deviceId: string; vaId: string; hostname: string }[] = [];
    for (const line of lines(work, PAYLOAD.devices)) {
      const d = line as { udi: string; udis: string[]; deviceId: string; vaId: string; hostname: string };
      for (const u of d.udis?.length ? d.udis : [d.udi]) {
        const owner = deviceOwner.get(u) as { account_id: string } | undefined;
        if (owner && owner.account_id !== c.account_id) foreign.add(d.udi);
      }
      devices.push({ udi: d.udi, deviceId: d.deviceId, vaId: d.vaId, hostname: String(d.hostname ?? '') });
    }

    db.exec('DROP TABLE IF EXISTS temp.staging');
    db.exec(`CREATE TEMP TABLE staging (ref INTEGER, udi TEXT, report_id TEXT, measurements INTEGER, content_hash TEXT, tags TEXT,
             body TEXT, status TEXT, reason TEXT)`);
    const stage = db.prepare('INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let n = 0;
    db.transaction(() => {
      for (const line of readLinesSync(join(work, PAYLOAD.reports.replace(/\.gz$/, '')))) {
        n++;
        let r: { ref: number; udi: string; reportId: string; measurements: number; contentHash: string; tags: string[]; body: string };
        try {
          r = JSON.parse(line);
        } catch (e) {
          throw new BundleError('malformed_payload', `${PAYLOAD.reports} line ${n}: ${(e as Error).message}`);
        }
        if (!Number.isInteger(r.ref) || typeof r.udi !== 'string' || typeof r.reportId !== 'string' || !Array.isArray(r.tags) || typeof r.body !== 'string') {
          throw new BundleError('malformed_payload', `${PAYLOAD.reports} line ${n}: not a report record`);
        }
        const unknown = r.tags.find((t) => !tags.has(t));
        const [status, reason] = foreign.has(r.udi)
          ? ['rejected', `device ${r.udi} belongs to another account`]
          : unknown !== undefined
            ? ['rejected', `unknown entitlement tag ${unknown}`]
            : r.tags.length === 0
              ? ['rejected', 'the report measures no entitlement']
              : ['accepted', null];
        stage.run(r.ref, r.udi, r.reportId, r.measurements, r.contentHash, r.tags.join('\n'), r.body, status, reason);
      }
    })();
    const listed = m.payloads.find((p) => p.name === PAYLOAD.reports);
    if (listed && n !== listed.records) throw new BundleError('payload_mismatch', `${PAYLOAD.reports} holds ${n} records; the manifest says ${listed.records}`);

    const confirmations = db.transaction(() => applyVaProposals(up, c.account_id, lines(work, PAYLOAD.virtualAccounts) as Iterable<{ vaId: string; name: string }>))();

    const counts = db.prepare("SELECT sum(status = 'accepted') AS a, sum(status = 'rejected') AS r FROM staging").get() as { a: number | null; r: number | null };
    const responseSequence = c.out_seq + 1;
    const snapshots = up.snapshots(c.account_id);
    const responseId = newId('bun', now);
    const response = await writeBundle(
      join(up.outDir, `response-${m.collectorId.slice(0, 12)}-seq${String(responseSequence).padStart(6, '0')}${BUNDLE_EXTENSION}`),
      {
        kind: 'response', bundleId: responseId, collectorId: c.id, accountId: c.account_id, sequence: responseSequence,
        lastAnsweredHash: c.last_answered_hash, answers: { bundleId: m.bundleId, sequence: m.sequence, hash: v.hash }, period: m.period,
        createdAt: new Date(now).toISOString(), eventChainHead: null,
        meta: { upstreamId: up.identity.collectorId, accepted: counts.a ?? 0, rejected: counts.r ?? 0 },
      },
      [
        { name: PAYLOAD.acks, records: acks(up) },
        { name: PAYLOAD.entitlements, records: snapshots },
        { name: PAYLOAD.policy, records: [up.policy()] },
        { name: PAYLOAD.vaConfirmations, records: confirmations },
      ],
      up.signer,
    );

    const result = db.transaction(() => {
      const before = (db.prepare('SELECT count(*) AS n FROM reports WHERE account_id = ?').get(c.account_id) as { n: number }).n;
      const merged = db
        .prepare(
          `INSERT INTO reports (account_id, udi, report_id, measurements, content_hash, tags, body, collector_id, received_at)
           SELECT ?, udi, report_id, measurements, content_hash, tags, body, ?, ? FROM staging WHERE status = 'accepted' ORDER BY udi, report_id
           ON CONFLICT (account_id, udi, report_id) DO UPDATE SET
             measurements = excluded.measurements, content_hash = excluded.content_hash, tags = excluded.tags, body = excluded.body,
             collector_id = excluded.collector_id, received_at = excluded.received_at
           WHERE excluded.measurements > reports.measurements`,
        )
        .run(c.account_id, c.id, now).changes;
      const after = (db.prepare('SELECT count(*) AS n FROM reports WHERE account_id = ?').get(c.account_id) as { n: number }).n;
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
      const record = db.prepare('INSERT OR IGNORE INTO bundles (id, collector_id, direction, kind, sequence, hash, file, created_at, forced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      record.run(m.bundleId, c.id, 'in', 'usage', m.sequence, v.hash, file, now, o.force ? 1 : 0);
      record.run(responseId, c.id, 'out', 'response', responseSequence, response.hash, response.path, now, 0);
      const accepted = counts.a ?? 0;
      const fresh = after - before;
      const res: ProcessResult = {
        usageBundle: m.bundleId, sequence: m.sequence, forced: o.force, responseFile: response.path, responseSequence,
        reports: { accepted, rejected: counts.r ?? 0, new: fresh, replaced: merged - fresh, alreadyCounted: accepted - merged },
      };
      up.event(o.force ? 'usage.processed_forced' : 'usage.processed', c.id, { ...res.reports, sequence: m.sequence, bundle: m.bundleId });
      return res;
    })();
    return result;
  } finally {
    try {
      db.exec('DROP TABLE IF EXISTS temp.staging');
    } catch {
      /* the store may be closing */
    }
    rmSync(work, { recursive: true, force: true });
  }
}

function* lines(work: string, name: string): Generator<unknown> {
  let n = 0;
  for (const l of readLinesSync(join(work, name.replace(/\.gz$/, '')))) {
    n++;
    try {
      yield parseStrictJson(l);
    } catch (e) {
      throw new BundleError('malformed_payload', `${name} line ${n}: ${(e as Error).message}`);
    }
  }
}

function* acks(up: UpstreamService): Generator<AckRecord> {
  const stmt = up.db.prepare(`SELECT rowid, ref, content_hash, status, reason FROM staging WHERE rowid > ? ORDER BY rowid LIMIT ${CHUNK}`);
  let after = 0;
  for (;;) {
    const rows = stmt.all(after) as { rowid: number; ref: number; content_hash: string; status: 'accepted' | 'rejected'; reason: string | null }[];
    if (!rows.length) return;
    for (const r of rows) yield { ref: r.ref, contentHash: r.content_hash, status: r.status, reason: r.reason };
    after = rows[rows.length - 1]!.rowid;
  }
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
