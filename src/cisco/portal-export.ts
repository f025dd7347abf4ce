import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { Identity } from '../identity/identity.js';
import { AppError, badRequest, conflict } from '../shared/errors.js';
import { PortalUploadError, writePortalUpload, type PortalDevice } from './portal-upload.js';

export interface PortalExportResult {
  file: string;
  uploadId: string;
  devices: number;
  reports: number;
  bytes: number;
}

/**
 * Writes the vendor portal's manual usage upload (the layout of Cisco's sample tooling) with
 * every RUM report, imported or polled, that waits for the portal's acknowledgement, each as
 * the device gave it, and records which version of which report went into each device's file.
 */
export class PortalExport {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private events: EventService,
    private bundleDir: string,
    private used: boolean,
  ) {}

  async export(actor: string): Promise<PortalExportResult> {
    if (!this.used) throw conflict('portal_not_used', 'this collector does not send to the vendor portal: set cisco.portal to true in its configuration');
    // One read: each report's body and the version of it (its wait's `since`) go together.
    const rows = this.db
      .prepare(
        `SELECT r.id, d.rowid AS dev, r.body, p.since FROM report_pending p JOIN reports r ON r.id = p.report_id JOIN devices d ON d.id = r.device_id
         WHERE p.destination = 'portal' ORDER BY d.rowid, r.id`,
      )
      .all() as { id: number; dev: number; body: string; since: number }[];
    if (!rows.length) throw badRequest('nothing_to_export', 'every RUM report has been acknowledged by the portal already: nothing to upload');
    try {
      return await this.write(rows, actor);
    } catch (e) {
      // Refusals above change nothing and are not failures; from here on, a failure is one, and
      // is recorded in a transaction of its own (the trail and the metrics count it).
      const err = e as { code?: unknown; message?: unknown };
      try {
        this.db.transaction(() => this.events.append('cisco.portal_export_failed', actor, null, null, { code: typeof err?.code === 'string' ? err.code : 'export_failed', reason: typeof err?.message === 'string' ? err.message : String(e) }))();
      } catch {
        // The store is what failed: the caller still gets the export's own error.
      }
      throw e;
    }
  }

  private async write(rows: { id: number; dev: number; body: string; since: number }[], actor: string): Promise<PortalExportResult> {
    const byDevice = new Map<string, PortalDevice>();
    for (const r of rows) {
      const devId = String(r.dev);
      const d = byDevice.get(devId) ?? { devId, reports: [] };
      // An imported report's original is its <RUMReport> element; a polled one's, its JSON.
      d.reports.push({ key: String(r.id), kind: r.body.trimStart().startsWith('<') ? 'rum-element' : 'polled-json', original: Buffer.from(r.body) });
      byDevice.set(devId, d);
    }
    const now = this.clock.now();
    const dir = join(this.bundleDir, 'outbox');
    mkdirSync(dir, { recursive: true });
    const uploadId = newId('pup', now);
    const file = join(dir, `portal-${uploadId}.tar.gz`);
    // The sample's Created-By names a bare UUID: the collector's, without its "col_" prefix.
    const out = await writePortalUpload(file, [...byDevice.values()], { createdAt: new Date(now), creatorUuid: this.identity.collectorId.replace(/^col_/, '') }).catch((e: unknown) => {
      throw e instanceof PortalUploadError ? new AppError(422, e.code, e.message) : e;
    });
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO portal_uploads (id, file, time_tag, reports, created_at) VALUES (?, ?, ?, ?, ?)').run(uploadId, file, out.timeTag, rows.length, now);
      const record = this.db.prepare('INSERT INTO portal_upload_reports (upload_id, dev_id, report_id, since) VALUES (?, ?, ?, ?)');
      const since = new Map(rows.map((r) => [r.id, r.since]));
      for (const f of out.files) for (const key of f.reportKeys) record.run(uploadId, f.devId, Number(key), since.get(Number(key)));
      this.events.append('cisco.portal_exported', actor, uploadId, null, { file, devices: out.files.length, reports: rows.length });
    })();
    return { file, uploadId, devices: out.files.length, reports: rows.length, bytes: out.bytes };
  }
}
