import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/processes.js';
import { acksApplied, cliJson, collectorAcks, readDb, upstreamReportIds } from '../helpers/sync-site.js';
import { startModeSite, type ModeSite } from '../helpers/mode-site.js';
import { tempDir } from '../helpers/temp.js';
import { TAG } from '../helpers/harness.js';

/**
 * The upstream's in-use per VA and tag, as it counted: for each device (UDI) it holds reports
 * of, the latest measurement of each tag (the latest period end, then the device's highest
 * report sequence, as the device sent them), summed over the devices of a VA. A lost report that
 * was the latest, or an old one counted over a newer one, shows here. The reference upstream
 * offers no command that prints this, so its store is read, read-only.
 */
function upstreamInUse(upDir: string): Record<string, number> {
  const rows = readDb(join(upDir, 'upstream.db'), (db) =>
    db.prepare('SELECT d.va_id AS va, r.udi, r.body FROM reports r JOIN accounts a ON a.num = r.account JOIN devices d ON d.udi = r.udi AND d.account_id = a.id').all() as { va: string; udi: string; body: string }[],
  );
  const latest = new Map<string, { end: number; seq: number; count: number }>();
  for (const r of rows) {
    const body = JSON.parse(r.body) as { seq: number; measurements: { tag: string; count: number; end: number }[] };
    for (const m of body.measurements) {
      const key = `${r.va} ${m.tag}\u0000${r.udi}`;
      const cur = latest.get(key);
      if (!cur || m.end > cur.end || (m.end === cur.end && body.seq > cur.seq)) latest.set(key, { end: m.end, seq: body.seq, count: m.count });
    }
  }
  const out: Record<string, number> = {};
  for (const [key, l] of latest) {
    const vaTag = key.slice(0, key.indexOf('\u0000'));
    out[vaTag] = (out[vaTag] ?? 0) + l.count;
  }
  return out;
}

/** What the devices say last, per VA and tag: what the upstream must count. */
function devicesInUse(dataDir: string, units: Map<string, number>): Record<string, number> {
  const vaOf = new Map(readDb(join(dataDir, 'outpost.db'), (db) => db.prepare('SELECT id, va_id FROM devices').all() as { id: string; va_id: string }[]).map((d) => [d.id, d.va_id]));
  const out: Record<string, number> = {};
  for (const [device, count] of units) out[`${vaOf.get(device)} ${TAG}`] = (out[`${vaOf.get(device)} ${TAG}`] ?? 0) + count;
  return out;
}

/**
 * Back up under load, keep reporting and syncing, lose the store, restore, let the devices send again what the
 * restored collector lost, sync, and hold the upstream's totals against what the devices sent:
 * the collector and `outpost upstream serve` as processes, every operator step through the CLI.
 */
describe('when a collector is restored from a backup made while its devices reported', () => {
  let s: ModeSite;
  beforeAll(async () => {
    s = await startModeSite();
    await s.start('connected');
  }, 90_000);
  afterAll(async () => {
    await s?.close();
  });

  it('then after the devices resend and a sync, the upstream holds every report once, the restore is on both trails, and the checkpoints read it as a restore', async () => {
    const sent: string[] = [];
    const units = new Map<string, number>(); // device → its latest count, which the upstream's in-use follows
    let running = true;
    let round = 0;
    const load = (async () => {
      while (running) {
        for (const [i, d] of s.fleet.devices.entries()) {
          const id = `L${round}-${i}`;
          const r = await d.sendKeeping([d.report(TAG, 1 + ((round + i) % 4), undefined, id)]);
          expect(r.response.status, JSON.stringify(r.response.body)).toBe(200);
          sent.push(id);
          units.set(d.deviceId!, 1 + ((round + i) % 4));
        }
        round++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const backupFile = join(tempDir('e2e-backup'), 'site.db');
    try {
      await new Promise((r) => setTimeout(r, 300));
      const out = await cli(['backup', backupFile, '--json'], s.env, 45_000); // the devices go on meanwhile
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout).file).toBe(backupFile);
      expect(out.stderr).toMatch(/^backup copy: \d+\/\d+ bytes/m); // its progress, streamed from the collector
      await new Promise((r) => setTimeout(r, 300));
      expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced' });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      running = false;
      await load;
    }
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced' });
    expect(upstreamReportIds(s.upDir)).toEqual([...sent].sort());
    expect(upstreamInUse(s.upDir)).toEqual(devicesInUse(s.dir, units));
    expect(acksApplied(s.dir)).toBe(sent.length);
    const inBackup = readDb(backupFile, (db) => db.prepare('SELECT count(*) FROM reports').pluck().get() as number);
    expect(inBackup).toBeLessThan(sent.length); // reports came after the backup: the restore loses them

    // The store's disk fails: nothing can be read from it, so the restore has only the backup.
    await s.stopCollector();
    const store = join(s.dir, 'outpost.db');
    const bytes = readFileSync(store);
    bytes.fill(0x5a, 0, Math.min(bytes.length, 64 * 1024));
    writeFileSync(store, bytes);
    const restored = await cliJson(['restore', backupFile], s.env);
    expect(restored.epoch).toBe(1);
    expect(restored.lost.join('\n')).toMatch(/could not be read/);
    await s.start('connected');

    // Each device reports once more: the answer says what the collector holds, and it sends the rest again.
    let resent = 0;
    for (const [i, d] of s.fleet.devices.entries()) {
      const id = `after-${i}`;
      const r = await d.sendKeeping([d.report(TAG, 2, undefined, id)]);
      expect(r.response.status).toBe(200);
      resent += r.resent;
      sent.push(id);
      units.set(d.deviceId!, 2);
    }
    expect(resent).toBe(sent.length - s.fleet.devices.length - inBackup);
    expect(await cliJson(['sync', 'now'], s.env)).toMatchObject({ status: 'synced' });

    // Exact: every report counted once upstream, its in-use per VA and tag what the devices say last,
    // every report ACKed once on the restored collector's trail (the ACKs of the lost history went
    // with it; what they answered was sent again), none waiting.
    expect(upstreamReportIds(s.upDir)).toEqual([...sent].sort());
    expect(upstreamInUse(s.upDir)).toEqual(devicesInUse(s.dir, units));
    expect(acksApplied(s.dir)).toBe(sent.length);
    expect(collectorAcks(s.dir)).toMatchObject({ reports: sent.length, pending: 0, rejected: 0 });
    const inUse = readDb(join(s.dir, 'outpost.db'), (db) => db.prepare('SELECT coalesce(sum(in_use), 0) FROM va_usage').pluck().get() as number);
    expect(inUse).toBe([...units.values()].reduce((a, b) => a + b, 0));

    // The restore is on both sides' trails.
    const upstreamEvents = readDb(join(s.upDir, 'upstream.db'), (db) => db.prepare("SELECT details FROM events WHERE type = 'collector.restored'").pluck().all() as string[]);
    expect(upstreamEvents.map((e) => JSON.parse(e))).toEqual([expect.objectContaining({ epoch: 1, previousEpoch: 0 })]);
    const collectorId = readDb(join(s.dir, 'outpost.db'), (db) => db.prepare("SELECT subject FROM events WHERE type = 'collector.restored'").pluck().get() as string);
    expect(collectorId).toMatch(/^col_/);

    // The upstream's checkpoints include some of the history the restore set aside: read as a restore, not tampering.
    const cps = join(tempDir('e2e-cps'), 'cps.jsonl');
    await cliJson(['upstream', 'checkpoints', 'export', '--collector', collectorId, '--out', cps], s.env);
    const verify = await cli(['events', 'verify', '--checkpoints', cps, '--json'], s.env, 45_000);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const report = JSON.parse(verify.stdout);
    expect(report.finding).toBe(null);
    expect(report.restores).toHaveLength(1);
    expect(report.restores[0].supersededCheckpoints).toBeGreaterThan(0);
  }, 180_000);
});
