import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { Identity } from '../identity/identity.js';
import { AppError, badRequest } from '../shared/errors.js';
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
 * every RUM report, imported or polled, that the portal has not acknowledged, each as the
 * device gave it, and records which reports went into each device's file.
 */
export class PortalExport {
  constructor(
    private db: Db,
    private clock: Clock,
    private identity: Identity,
    private events: EventService,
    private bundleDir: string,
  ) {}

  async export(actor: string): Promise<PortalExportResult> {
    const rows = this.db
      .prepare(
        `SELECT r.id, d.rowid AS dev, r.report_id AS key, r.body FROM reports r JOIN devices d ON d.id = r.device_id
         WHERE r.source = 'rum' AND NOT EXISTS (SELECT 1 FROM portal_acks a WHERE a.report_id = r.id) ORDER BY d.rowid, r.id`,
      )
      .all() as { id: number; dev: number; key: string; body: string }[];
    if (!rows.length) throw badRequest('nothing_to_export', 'every RUM report has been acknowledged by the portal already: nothing to upload');
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
      const record = this.db.prepare('INSERT INTO portal_upload_reports (upload_id, dev_id, report_id) VALUES (?, ?, ?)');
      for (const f of out.files) for (const key of f.reportKeys) record.run(uploadId, f.devId, Number(key));
      this.events.append('cisco.portal_exported', actor, uploadId, null, { file, devices: out.files.length, reports: rows.length });
    })();
    return { file, uploadId, devices: out.files.length, reports: rows.length, bytes: out.bytes };
  }
}
