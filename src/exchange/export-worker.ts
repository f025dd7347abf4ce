import { parentPort, workerData } from 'node:worker_threads';
import { openReader } from '../store/open.js';
import { writePayloads } from './write.js';
import { hostnameMapper, usagePayloads, type PartLimits } from './usage-payloads.js';
import { countingReports } from './export-progress.js';

/**
 * The export's heavy half, on its own thread: it reads one consistent WAL snapshot of the
 * store through a read-only connection and streams the payloads to files, while the main
 * thread keeps answering devices. It never sees a private key: the main thread signs.
 */
const { dbFile, dir, hostnameKey, part, progress } = workerData as { dbFile: string; dir: string; hostnameKey: string | null; part: PartLimits | null; progress: boolean };
const db = openReader(dbFile);
try {
  db.exec('BEGIN'); // one snapshot for every payload
  const reach = { lastRef: part?.after ?? 0, cut: false };
  const payloads = usagePayloads(db, hostnameMapper(hostnameKey ? Buffer.from(hostnameKey, 'base64') : null), part ?? undefined, reach);
  const onProgress = progress ? (p: unknown) => parentPort!.postMessage({ ok: true, progress: p }) : undefined;
  const listed = await writePayloads(dir, countingReports(db, payloads, onProgress, part?.after, part?.maxReports));
  db.exec('COMMIT');
  parentPort!.postMessage({ ok: true, listed, reach });
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).message });
} finally {
  db.close();
}
