import { toIso } from '../shared/clock.js';
import { csvLine } from '../shared/csv.js';
import type { DeviceFilter, DeviceRepository } from './repository.js';
import type { LabelRepository } from '../labels/repository.js';

/** The devices the filter matches as CSV rows, header first, read a page at a time in id order. */
export function* devicesCsv(repo: DeviceRepository, labels: LabelRepository, f: Omit<DeviceFilter, 'after' | 'limit' | 'sort' | 'order'>): Generator<string> {
  yield csvLine(['id', 'va_id', 'pid', 'serial', 'hostname', 'software_version', 'status', 'source', 'pending_rekey', 'registered_at', 'last_seen_at', 'last_seq', 'labels']);
  for (const d of repo.each(f)) {
    yield csvLine([
      d.id, d.va_id, d.udi_pid, d.udi_serial, d.hostname, d.software_version, d.status, d.source, d.pending_public_key !== null,
      toIso(d.registered_at), toIso(d.last_seen_at), d.last_seq, labels.ofDevice(d.id).map((l) => l.name).join('; '),
    ]);
  }
}
