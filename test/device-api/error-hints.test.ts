import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

describe('when a device registered again with a new key reports signed with it', () => {
  it('then it is told a re-key is pending for it and how to settle it', async () => {
    const owner = await h.registered('FOC-REKEY1');
    const again = h.device('FOC-REKEY1');
    const reg = await again.register(await h.token());
    expect(reg.status).toBe(202);
    expect(reg.body.status).toBe('pending_rekey');
    again.deviceId = reg.body.deviceId;

    const r = await again.sendReport(again.report(TAG, 1));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('rekey_pending');
    expect(r.body.error.message).toContain(`outpost devices approve ${owner.deviceId}`);
    expect(r.body.error.message).toContain('registered with');
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
  });

  it('then a stranger signing with some other key still gets a bare bad_signature', async () => {
    const owner = await h.registered('FOC-REKEY2');
    await h.device('FOC-REKEY2').register(await h.token()); // a re-key is pending
    const stranger = new SimulatedDevice(h.url, h.services.identity.collectorId, { pid: 'C9300-24T', serial: 'FOC-REKEY2' });
    stranger.deviceId = owner.deviceId;
    const r = await stranger.sendReport(stranger.report(TAG, 1));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('bad_signature');
    expect(r.body.error.message).not.toMatch(/re-key|pending/);
  });
});

describe('when a report id is sent again with different content', () => {
  it('then the refusal says to send the same content or use a new report id', async () => {
    const d = await h.registered();
    const at = Math.floor(Date.now() / 1000);
    expect((await d.sendReport(d.report(TAG, 1, at, 'rep-1'))).status).toBe(200);
    const r = await d.sendReport(d.report(TAG, 2, at, 'rep-1'));
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('report_id_reused');
    expect(r.body.error.message).toMatch(/same content/);
    expect(r.body.error.message).toMatch(/new report id/);
  });
});
