import Database from 'better-sqlite3';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { request } from 'undici';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { TAG } from './harness.js';
import { cli } from './processes.js';

/**
 * What the end-to-end sync tests share: a free port kept across restarts (so a collector's
 * URL and its devices' stay the same), the CLI read as JSON, devices that report, and the two
 * stores opened read-only to count what each side holds.
 */

/** A loopback port free now: a process restarted on it keeps its URL. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Runs `outpost ARGS --json`, expects exit code `code` (0 unless told), and parses what it printed. */
export async function cliJson(args: string[], env: Record<string, string>, code = 0): Promise<any> {
  const r = await cli([...args, '--json'], env, 45_000);
  expect(r.code, `outpost ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(code);
  return r.stdout.trim() ? JSON.parse(r.stdout) : null;
}

/** Reads a store while its process may still run (WAL readers never block its writer). */
export function readDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The upstream's counted reports, by report id (sorted): each once, or a double count shows. */
export const upstreamReportIds = (upstreamDir: string): string[] =>
  readDb(join(upstreamDir, 'upstream.db'), (db) => (db.prepare('SELECT report_id FROM reports ORDER BY report_id').all() as { report_id: string }[]).map((r) => r.report_id));

export interface CollectorAcks {
  reports: number;
  pending: number;
  accepted: number;
  rejected: number;
}

/** The collector's reports and their ACKs: one row per report in report_acks, at most. */
export const collectorAcks = (dataDir: string): CollectorAcks =>
  readDb(join(dataDir, 'outpost.db'), (db) => ({
    reports: (db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n,
    pending: (db.prepare('SELECT count(*) AS n FROM report_pending').get() as { n: number }).n,
    accepted: (db.prepare("SELECT count(*) AS n FROM report_acks WHERE status = 'accepted'").get() as { n: number }).n,
    rejected: (db.prepare("SELECT count(*) AS n FROM report_acks WHERE status = 'rejected'").get() as { n: number }).n,
  }));

/** The ACKs the collector's applied responses carried, summed over every import: a report settled twice counts twice here. */
export const acksApplied = (dataDir: string): number =>
  readDb(join(dataDir, 'outpost.db'), (db) =>
    (db.prepare("SELECT details FROM events WHERE type = 'exchange.imported'").all() as { details: string }[])
      .map((e) => JSON.parse(e.details) as { acks?: { accepted?: number; rejected?: number } })
      .reduce((n, d) => n + (d.acks?.accepted ?? 0) + (d.acks?.rejected ?? 0), 0),
  );

export const eventsOf = (dataDir: string, type: string): { actor: string; subject: string | null; details: any }[] =>
  readDb(join(dataDir, 'outpost.db'), (db) =>
    (db.prepare('SELECT actor, subject, details FROM events WHERE type = ? ORDER BY id').all(type) as { actor: string; subject: string | null; details: string }[]).map((e) => ({ ...e, details: JSON.parse(e.details) })),
  );

/** Devices registered with the collector at `url`, and what they reported (by report id). */
export class Fleet {
  readonly sent: string[] = [];
  private constructor(readonly devices: SimulatedDevice[]) {}

  static async register(url: string, env: Record<string, string>, n: number, prefix: string): Promise<Fleet> {
    const token = (await cliJson(['token', 'create', '--description', prefix, '--uses', String(n)], env)).secret as string;
    const collectorId = ((await (await request(`${url}/device/v1/collector`)).body.json()) as { collectorId: string }).collectorId;
    const devices = Array.from({ length: n }, (_, i) => new SimulatedDevice(url, collectorId, { pid: 'C9300-24T', serial: `${prefix}${i}` }));
    for (const d of devices) expect((await d.register(token)).status).toBe(201);
    return new Fleet(devices);
  }

  /** Each device sends one report, its id `<tag>-<device>`. */
  async report(tag: string): Promise<void> {
    for (const [i, d] of this.devices.entries()) {
      const id = `${tag}-${i}`;
      const r = await d.sendReport(d.report(TAG, i + 1, undefined, id));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      this.sent.push(id);
    }
  }

  get expected(): string[] {
    return [...this.sent].sort();
  }
}
