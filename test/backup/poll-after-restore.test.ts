import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { tempDir } from '../helpers/temp.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { pollAfterRestore } from '../../src/backup/poll-after-restore.js';

let h: Harness | undefined;
let fake: FakeIosXe | undefined;
afterEach(async () => {
  await h?.close();
  await fake?.stop();
  h = fake = undefined;
});

const flagged = (hh: Harness) => hh.count("SELECT count(*) FROM meta WHERE key = 'restore.poll_after_start'");

// A restored store lacks what IOS-XE devices reported since its backup; they still hold it.
describe('when a store with polled devices is restored', () => {
  it('then the first start polls them at once, stores what the backup lacked, and only then forgets to do so', async () => {
    const ca = makeTestCa();
    fake = await startFakeIosXe({ ca, count: 1 });
    const d = fake.devices[0]!;
    const dataDir = join(tempDir('restore-poll'), 'data');
    const config = { dataDir, cisco: { caFile: ca.caFile, timeoutSeconds: 2, retries: 0 } };
    h = await startHarness({ config });
    await h.api.post('/api/v1/cisco/devices').send({ name: 'sw-1', host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201);
    const file = join(tempDir('backups'), 'b.db');
    await h.services.backups.backup({ file, withKeys: true, actor: 'test' });
    // Polled after the backup: the restored store will not have these reports.
    await h.api.post('/api/v1/cisco/poll').send({}).expect(200);
    const polled = h.count("SELECT count(*) FROM reports WHERE source != 'device'");
    expect(polled).toBeGreaterThan(0);
    await h.close();
    h = undefined;

    restoreBackup({ dataDir, file, now: () => Date.now(), actor: 'test' });
    h = await startHarness({ config });
    expect(h.count("SELECT count(*) FROM reports WHERE source != 'device'")).toBe(0);
    expect(flagged(h)).toBe(1);
    const seenBefore = d.seen.length;
    await pollAfterRestore(h.services);
    expect(d.seen.slice(seenBefore).map((s) => `${s.method} ${s.path}`)).toContain('GET /smartlic-service/all-reports');
    expect(h.count("SELECT count(*) FROM reports WHERE source != 'device'")).toBe(polled);
    expect(flagged(h)).toBe(0);
    // The next start polls nothing of its own.
    expect(pollAfterRestore(h.services)).toBeNull();
  });
});
