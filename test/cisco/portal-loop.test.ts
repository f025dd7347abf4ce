import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { portalAck } from '../helpers/portal-ack.js';

let h: Harness | undefined;
let fake: FakeIosXe | undefined;
afterEach(async () => {
  await h?.close();
  await fake?.stop();
  h = fake = undefined;
});

describe('the full loop with the vendor portal: poll, export, the portal ACK, delivery to each device', () => {
  it('when devices are polled and the upload is answered, then each device receives exactly its own ACK, and its reports are settled for the portal', async () => {
    const ca = makeTestCa();
    fake = await startFakeIosXe({ count: 3, ca });
    h = await startHarness({ config: { cisco: { caFile: ca.caFile, timeoutSeconds: 2, retries: 0 } } });
    for (const d of fake.devices) {
      await h.api.post('/api/v1/cisco/devices').send({ name: `sw-${d.index}`, host: d.host, port: d.port, username: d.username, password: d.password, vaId: h.defaultVa }).expect(201);
    }
    const polled = (await h.api.post('/api/v1/cisco/poll').send({}).expect(200)).body.items;
    expect(polled.every((p: { ok: boolean }) => p.ok)).toBe(true);
    const upload = (await h.api.post('/api/v1/cisco/export').send({}).expect(200)).body;
    expect(upload).toMatchObject({ devices: 3, reports: 6 });

    const { file, acks } = portalAck(upload.file);
    await fake.setFaults(2, { down: true }); // one device is down when the ACK comes back
    const r = (await h.api.post('/api/v1/cisco/import-ack').send({ file }).expect(200)).body;
    expect(r).toMatchObject({ devices: 3, reportsAcknowledged: 6, delivery: { delivered: 2, failed: 1, manual: 0 } });
    const devIdOf = (serial: string) => String(h!.services.db.prepare('SELECT rowid FROM devices WHERE udi_serial = ?').pluck().get(serial));
    for (const d of fake.devices.slice(0, 2)) {
      expect(d.imports.map((i) => i.text)).toEqual([acks.get(devIdOf(d.udi.serial))]);
    }
    expect(fake.device(2).imports).toEqual([]);
    const waiting = (await h.api.get('/api/v1/cisco/acks')).body.items.filter((a: { deliveredAt: string | null }) => !a.deliveredAt);
    expect(waiting).toHaveLength(1);
    expect(waiting[0].lastError).toContain('nothing answers');
    const ackCounts = async () =>
      ((await h!.api.get('/api/v1/cisco/devices').expect(200)).body.items as { name: string; acks: object }[]).map((d) => [d.name, d.acks]);
    expect(await ackCounts()).toEqual([
      ['sw-0', { pending: 0, delivered: 1 }], ['sw-1', { pending: 0, delivered: 1 }], ['sw-2', { pending: 1, delivered: 0 }],
    ]);

    // Back up: the next delivery gives it its own ACK, once; the others get nothing twice.
    await fake.setFaults(2, { down: false });
    expect(await h.services.cisco.delivery.deliver('test')).toEqual({ delivered: 1, failed: 0, manual: 0 });
    expect(fake.device(2).imports.map((i) => i.text)).toEqual([acks.get(devIdOf(fake.device(2).udi.serial))]);
    expect(fake.devices.map((d) => d.imports.length)).toEqual([1, 1, 1]);
    expect((await ackCounts())[2]).toEqual(['sw-2', { pending: 0, delivered: 1 }]);
    // Settled for the portal: the next upload has nothing to carry.
    expect((await h.api.post('/api/v1/cisco/export').send({})).body.error.code).toBe('nothing_to_export');
    // The same ACK file again settles nothing twice and delivers nothing twice.
    const again = (await h.api.post('/api/v1/cisco/import-ack').send({ file }).expect(200)).body;
    expect(again).toMatchObject({ reportsAcknowledged: 0, delivery: { delivered: 0 } });
    expect(fake.devices.map((d) => d.imports.length)).toEqual([1, 1, 1]);
  });
});
