import { existsSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { fail, ok, type Check } from './check.js';
import { fileModeChecks } from './files.js';
import { clockChecks, exchangeChecks, keyChecks, openForDoctor, restoreChecks } from './store.js';
import { backupAgeCheck } from './backups.js';
import { backupFileChecks, configFileCheck, secretFileChecks } from './secrets.js';
import { polledDeviceChecks, upstreamChecks, type NetworkOptions } from './network.js';

export interface DoctorOptions extends Partial<NetworkOptions> {
  now?: number;
  /** The configuration file loaded (--config or OUTPOST_CONFIG), if any: its mode is checked. */
  configFile?: string | undefined;
}

function diskCheck(dataDir: string, floorMb: number): Check {
  try {
    const s = statfsSync(dataDir);
    const freeMb = Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
    if (freeMb < floorMb) return fail('free disk', `${freeMb} MB free under ${dataDir}, below ready.minFreeDiskMb (${floorMb} MB): the collector reports itself not ready`, 'free space on that disk (old bundles in the archive, logs, backups), or grow it');
    return ok('free disk', `${freeMb} MB free under ${dataDir} (floor ${floorMb} MB)`);
  } catch (e) {
    return fail('free disk', `cannot read the free space under ${dataDir}: ${(e as Error).message}`, 'check that the data folder exists and is readable');
  }
}

/**
 * Every check of `outpost doctor`, on the host: the files, the database (read-only), the clock
 * and the network, so that it works while the collector is down, which is when it is needed.
 */
export async function runDoctor(config: Config, opts: DoctorOptions = {}): Promise<Check[]> {
  const now = opts.now ?? Date.now();
  const net: NetworkOptions = { timeoutMs: opts.timeoutMs ?? 3000, concurrency: opts.concurrency ?? 16, now };
  const dataDir = config.dataDir;
  const checks: Check[] = [ok('config', 'the configuration is valid'), ...configFileCheck(opts.configFile), ...fileModeChecks(dataDir), ...backupFileChecks(config.backup.dir)];
  if (existsSync(dataDir)) checks.push(diskCheck(dataDir, config.ready.minFreeDiskMb));
  const { db, check } = openForDoctor(join(dataDir, 'outpost.db'));
  checks.push(check);
  try {
    checks.push(...secretFileChecks(config, db), ...clockChecks(db, config, dataDir, now));
    if (db) checks.push(...keyChecks(db, dataDir), ...restoreChecks(db), ...exchangeChecks(db, config, now), backupAgeCheck(db, config, now));
    const [up, devices] = await Promise.all([upstreamChecks(db, config, dataDir, net), polledDeviceChecks(db, net)]);
    checks.push(...up, ...devices);
  } finally {
    db?.close();
  }
  return checks;
}
