import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { tempDir } from '../helpers/temp.js';

const lastBackup = async (x: Harness) => valueOf(parsePrometheus((await x.api.get('/metrics').expect(200)).text), 'outpost_backup_last_success_timestamp_seconds');

describe('outpost_backup_last_success_timestamp_seconds', () => {
  it('is 0 before the first backup, the time of the newest after, and the same after a restart', async () => {
    const dataDir = join(tempDir('metrics-backup'), 'data');
    const x = await startHarness({ config: { dataDir } });
    let at: number;
    try {
      expect(await lastBackup(x)).toBe(0);
      const before = Date.now();
      await x.api.post('/api/v1/backups').send({}).expect((r) => expect(r.status).toBeLessThan(300));
      at = (await lastBackup(x))!;
      expect(at * 1000).toBeGreaterThanOrEqual(before);
      expect(at * 1000).toBeLessThanOrEqual(Date.now());
    } finally {
      await x.close();
    }
    // A new process on the same store: the service's memory is gone, the trail is not.
    const y = await startHarness({ config: { dataDir } });
    try {
      expect(await lastBackup(y)).toBe(at);
    } finally {
      await y.close();
    }
  });
});
