import { streamPayloadLines, BundleError } from '../exchange/read.js';
import type { Manifest } from '../exchange/manifest.js';
import { PAYLOAD, type AckRecord, type ReportRecord } from '../exchange/records.js';

/** What decides a report's fate, in a form a worker thread can receive. */
export interface ReportCheck {
  /** The catalog: a report of any other tag is rejected. */
  tags: string[];
  /** UDIs bound to another account: their reports are rejected. */
  foreign: string[];
}

/**
 * The accepted reports of one chunk, as flat columns (cheap to pass between threads):
 * `fields` holds four strings a report (UDI, report id, tags newline-separated, body).
 */
export interface ReportBatch {
  fields: string[];
  measurements: number[];
  /** Report lines read through this batch, accepted or not: how far processing has got. */
  read: number;
}

export interface ReportsRead {
  lines: number;
  accepted: number;
  rejected: number;
  /** Runs of refs with one status, in ref order: the response's ACKs. */
  acks: AckRecord[];
}

/**
 * Reads a verified usage bundle's reports payload, checks every record and decides its fate,
 * and hands the accepted ones on in batches: the parsing half of processing, which the
 * upstream runs on a worker thread while its main thread writes. A malformed record, refs out
 * of order, or a count that disagrees with the manifest throws: the caller rolls back.
 */
export async function readReportBatches(file: string, manifest: Manifest, check: ReportCheck, onBatch: (b: ReportBatch) => void | Promise<void>): Promise<ReportsRead> {
  const tags = new Set(check.tags);
  const foreign = new Set(check.foreign);
  const acks: AckRecord[] = [];
  const ack = (ref: number, status: AckRecord['status'], reason: string | null) => {
    const last = acks[acks.length - 1];
    if (last && last.status === status && last.reason === reason) last.to = ref;
    else acks.push({ from: ref, to: ref, status, reason });
  };
  let accepted = 0;
  let rejected = 0;
  let lastRef = 0;
  const lines = await streamPayloadLines(file, manifest, PAYLOAD.reports, async (chunk, before) => {
    const batch: ReportBatch = { fields: [], measurements: [], read: before + chunk.length };
    for (let i = 0; i < chunk.length; i++) {
      let r: ReportRecord;
      try {
        r = JSON.parse(chunk[i]!);
      } catch (e) {
        throw new BundleError('malformed_payload', `${PAYLOAD.reports} line ${before + i + 1}: ${(e as Error).message}`);
      }
      if (!Number.isInteger(r.ref) || r.ref <= lastRef || typeof r.udi !== 'string' || typeof r.reportId !== 'string' || !Array.isArray(r.tags) || typeof r.body !== 'string' || !Number.isInteger(r.measurements)) {
        throw new BundleError('malformed_payload', `${PAYLOAD.reports} line ${before + i + 1}: not a report record (or refs out of order)`);
      }
      lastRef = r.ref;
      const unknown = r.tags.find((t) => !tags.has(t));
      const reason = foreign.has(r.udi)
        ? `device ${r.udi} belongs to another account`
        : unknown !== undefined
          ? `unknown entitlement tag ${unknown}`
          : r.tags.length === 0
            ? 'the report measures no entitlement'
            : null;
      if (reason) {
        rejected++;
        ack(r.ref, 'rejected', reason);
        continue;
      }
      accepted++;
      batch.fields.push(r.udi, r.reportId, r.tags.join('\n'), r.body);
      batch.measurements.push(r.measurements);
      ack(r.ref, 'accepted', null);
    }
    if (batch.measurements.length) await onBatch(batch);
  });
  const listed = manifest.payloads.find((p) => p.name === PAYLOAD.reports);
  if (listed && lines !== listed.records) throw new BundleError('payload_mismatch', `${PAYLOAD.reports} holds ${lines} records; the manifest says ${listed.records}`);
  return { lines, accepted, rejected, acks };
}
