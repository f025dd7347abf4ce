import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { floorFile, readFloorFile } from '../time/floor-file.js';
import { sealCopy } from './seal.js';

/**
 * Makes the copy an upgrade takes before migrating a backup `outpost restore` takes: the way
 * back from an upgrade that went wrong is to restore it, and a plain copy was refused as "not
 * an Outpost backup". It holds no keys (the install keeps its own). A data folder with no
 * identity yet (a store made by a test or by hand) keeps a plain copy: there is no collector
 * for the manifest to name.
 */
export function preMigrationSealer(dataDir: string, version: string, now: () => number = Date.now): (file: string) => void {
  return (file) => {
    let collectorId: string;
    try {
      collectorId = (JSON.parse(readFileSync(join(dataDir, 'keys', 'collector.json'), 'utf8')) as { collectorId: string }).collectorId;
    } catch {
      return;
    }
    sealCopy({
      file, version, collectorId, createdAt: new Date(now()).toISOString(), floorMs: readFloorFile(floorFile(dataDir)),
      withKeys: false, keys: [], reason: 'pre-migration',
    });
  };
}
