import { join } from 'node:path';
import { startHarness, type Harness } from './harness.js';
import { openUpstreamStore } from '../../src/upstream/store.js';
import { UpstreamService } from '../../src/upstream/service.js';
import { processUsageBundle, type ProcessResult } from '../../src/upstream/process.js';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';
import { systemClock } from '../../src/shared/clock.js';
import type { ExportResult } from '../../src/exchange/export.js';
import { tempDir } from './temp.js';

export interface Upstream {
  dir: string;
  service: UpstreamService;
  process(file: string, force?: boolean): Promise<ProcessResult>;
  close(): void;
}

export function startUpstream(dir = tempDir('upstream')): Upstream {
  const db = openUpstreamStore(dir);
  const { identity } = loadOrCreateIdentity(dir, 'upstream');
  const service = new UpstreamService(db, systemClock, identity, join(dir, 'outbox'), dir);
  return {
    dir,
    service,
    process: (file, force = false) => processUsageBundle(service, file, { force }),
    close: () => db.close(),
  };
}

/** Enrolls a collector with an upstream the way operators do, fingerprints confirmed. */
export async function enroll(h: Harness, up: Upstream, account = 'ACME'): Promise<void> {
  const req = await h.services.exchange.enrollment.request(account, 'test');
  const added = await up.service.addCollector(req.file, { account, fingerprint: req.fingerprint });
  await h.services.exchange.enrollment.trust(added.responseFile!, up.service.identity.fingerprint, 'test');
}

export interface Site {
  h: Harness;
  up: Upstream;
  exportNow(period?: string): Promise<ExportResult>;
  importFile(file: string, force?: boolean): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** A collector (real app, real SQLite) enrolled with a reference upstream (its own store). */
export async function startSite(config?: Record<string, unknown>): Promise<Site> {
  const h = await startHarness(config ? { config } : {});
  const up = startUpstream(join(h.dir, 'upstream'));
  await enroll(h, up);
  return {
    h,
    up,
    exportNow: async (period = '2026-11') => (await h.api.post('/api/v1/exchange/export').send({ period }).expect(200)).body,
    importFile: async (file, force = false) => {
      const r = await h.api.post('/api/v1/exchange/import').send({ file, force });
      return { status: r.status, body: r.body };
    },
    close: async () => {
      up.close();
      await h.close();
    },
  };
}
