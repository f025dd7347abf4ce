import { afterEach, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { enroll, startUpstream, type Upstream } from '../helpers/exchange.js';
import { tempDir } from '../helpers/temp.js';
import { signEpoch, type EpochStatement, type UnsignedEpochStatement } from '../../src/backup/epoch.js';
import { nextKey } from '../../src/identity/identity.js';
import { fingerprint } from '../../src/shared/ed25519.js';
import type { ExportResult } from '../../src/exchange/export.js';

let h: Harness | undefined;
let up: Upstream | undefined;
afterEach(async () => {
  up?.close();
  up = undefined;
  await h?.close();
  h = undefined;
});

/**
 * The Outpost upstream's judgment of a restored collector's epoch (src/upstream/epochs.ts), on
 * real usage bundles the collector exported, processed into a real upstream store. A restore is
 * stood in for by what it leaves in the collector's store: a signed statement, carried by every
 * bundle after it, and the bundle sequence set back to the backup's.
 */
it('the upstream accepts a higher epoch once, restarting the sequence, and refuses bundles from before it, of an older epoch, with a statement it cannot verify, or replaying a statement', async () => {
  h = await startHarness();
  up = startUpstream(tempDir('epochs-upstream'));
  await enroll(h, up);
  const x = h;
  const u = up;
  const d = await x.registered();
  const collectorId = x.services.identity.collectorId;
  let n = 0;
  const exportNow = async (): Promise<ExportResult> => {
    // A new report each time: every bundle carries something to count.
    expect((await d.sendReport(d.report(TAG, 1 + (n++ % 3)))).status).toBe(200);
    return (await x.api.post('/api/v1/exchange/export').send({ period: '2026-11' }).expect(200)).body;
  };
  const setMeta = (key: string, value: string) =>
    x.services.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  /** What a restore from a backup made at sequence `fromSequence` leaves in the collector's store. */
  const restoredTo = (s: EpochStatement) => {
    setMeta('exchange.epoch', String(s.epoch));
    setMeta('exchange.epoch_statement', JSON.stringify(s));
    setMeta('exchange.out_seq', String(s.fromSequence));
  };
  const head = x.services.events.head();
  const statement = (epoch: number, fromSequence: number, sign = (b: Buffer) => x.services.identity.signDetached(b), keyId = x.services.identity.fingerprint): EpochStatement => {
    const s: UnsignedEpochStatement = {
      collectorId, keyId, epoch, fromSequence, restoredAt: new Date().toISOString(), backupCreatedAt: new Date(Date.now() - 60_000).toISOString(),
      backupEventHead: { id: head.id, hash: head.hash },
    };
    return signEpoch(s, sign);
  };
  const row = () => u.service.db.prepare('SELECT epoch, usage_hwm AS hwm FROM collectors WHERE id = ?').get(collectorId) as { epoch: number; hwm: number };
  const restoredEvents = () => u.service.db.prepare("SELECT details FROM events WHERE type = 'collector.restored' ORDER BY id").pluck().all().map((e) => JSON.parse(e as string));
  const counted = () => u.service.db.prepare('SELECT count(*) FROM reports').pluck().get() as number;
  /** A refused bundle changes nothing upstream. */
  const refused = async (file: string, code: string, message: RegExp) => {
    const before = { row: row(), counted: counted(), events: restoredEvents().length };
    await expect(u.process(file)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    expect({ row: row(), counted: counted(), events: restoredEvents().length }).toEqual(before);
  };

  // Before any restore: three bundles counted, the sequence at 3; a fourth is made and still in transit.
  for (let i = 0; i < 3; i++) await u.process((await exportNow()).file);
  expect(row()).toEqual({ epoch: 0, hwm: 3 });
  const inTransit = await exportNow();
  expect(inTransit.sequence).toBe(4);

  // Restored from a backup made at sequence 1: epoch 1, its next bundle is 2 again and is not a replay.
  const s1 = statement(1, 1);
  restoredTo(s1);
  const first = await exportNow();
  expect(first.sequence).toBe(2);
  expect(await u.process(first.file)).toMatchObject({ sequence: 2, alreadyProcessed: false, reports: { accepted: expect.any(Number) } });
  expect(row()).toEqual({ epoch: 1, hwm: 2 }); // set back from 3
  expect(restoredEvents()).toEqual([expect.objectContaining({ epoch: 1, previousEpoch: 0, fromSequence: 1, previousHwm: 3, bundle: first.bundleId })]);

  // The bundle made before the restore carries no epoch: refused, though its sequence is above.
  await refused(inTransit.file, 'stale_epoch', /restored from a backup \(epoch 1\).*carries no epoch/);

  // The same statement again (every bundle after the restore carries it): the known epoch, no reset.
  const next = await exportNow();
  expect(next.sequence).toBe(3);
  await u.process(next.file);
  expect(row()).toEqual({ epoch: 1, hwm: 3 });
  expect(restoredEvents()).toHaveLength(1);
  // Replayed to set the sequence back once more: the statement is spent, the bundle a replay.
  setMeta('exchange.out_seq', String(s1.fromSequence));
  const replayed = await exportNow();
  expect(replayed.sequence).toBe(2);
  await refused(replayed.file, 'replay', /sequence 2 is at or below the last processed from this collector \(3\)/);

  // A statement signed by a key the upstream never pinned for this collector: refused.
  const stranger = nextKey();
  restoredTo(statement(2, 1, (b) => stranger.signDetached(b), fingerprint(stranger.publicKey)));
  await refused((await exportNow()).file, 'bad_epoch', /signed by .* which is not a key of collector/);
  // The collector's key id on a statement another key signed: refused too.
  restoredTo(statement(2, 1, (b) => stranger.signDetached(b)));
  await refused((await exportNow()).file, 'bad_epoch', /signature does not verify/);

  // A bundle of epoch 1 made now is held back; a second restore (epoch 2) is accepted once, with its reset.
  restoredTo(s1);
  setMeta('exchange.out_seq', '3');
  const epoch1 = await exportNow();
  expect(epoch1.sequence).toBe(4);
  restoredTo(statement(2, 2));
  const second = await exportNow();
  expect(second.sequence).toBe(3);
  await u.process(second.file);
  expect(row()).toEqual({ epoch: 2, hwm: 3 });
  expect(restoredEvents().map((e) => [e.epoch, e.previousEpoch, e.previousHwm])).toEqual([[1, 0, 3], [2, 1, 3]]);
  // The older epoch's bundle, though its sequence is above: refused as made before the restore.
  await refused(epoch1.file, 'stale_epoch', /of epoch 1, but collector .* was restored since \(epoch 2\)/);
});
