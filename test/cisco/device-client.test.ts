import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeviceClient } from '../../src/cisco/device-client.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';

let fake: FakeIosXe | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await fake?.stop();
  fake = undefined;
});

describe('the IOS-XE device client', () => {
  it('when many devices are reached in ca mode, then the trust store (the system CAs and cisco.caFile) is built once, not once for each connection', async () => {
    fake = await startFakeIosXe({ count: 4 });
    const ca = readFileSync(fake.ca.caFile, 'utf8');
    // Node's TLS client builds a context from the options of each connection that brings none:
    // with ~140 system CAs and the configured one, about 25 ms of the event loop every time.
    const built = vi.spyOn(tls, 'createSecureContext');
    for (const d of fake.devices) {
      const client = new DeviceClient({ host: d.host, port: d.port, username: d.username, password: d.password, tls: { mode: 'ca', pin: null } }, { timeoutMs: 5000, ca });
      try {
        await client.closeReports();
        expect(await client.allReports()).toContain('"usage"');
      } finally {
        await client.close();
      }
    }
    const withCa = built.mock.calls.filter(([o]) => o?.ca !== undefined);
    expect(withCa.length).toBeLessThanOrEqual(1);
    // Still verified against that CA: a certificate from another CA is refused.
    const rogue = await startFakeIosXe({ count: 1, ca: fake.ca, cert: fake.ca.rogue });
    try {
      const d = rogue.devices[0]!;
      const client = new DeviceClient({ host: d.host, port: d.port, username: d.username, password: d.password, tls: { mode: 'ca', pin: null } }, { timeoutMs: 5000, ca });
      await expect(client.allReports()).rejects.toMatchObject({ code: 'tls' });
      await client.close();
    } finally {
      await rogue.stop();
    }
  });

  it('when a device is polled, then its requests share one connection: one TLS handshake a device, not one a request', async () => {
    fake = await startFakeIosXe({ count: 1 });
    const d = fake.devices[0]!;
    const client = new DeviceClient({ host: d.host, port: d.port, username: d.username, password: d.password, tls: { mode: 'ca', pin: null } }, { timeoutMs: 5000, ca: readFileSync(fake.ca.caFile, 'utf8') });
    try {
      await client.closeReports();
      await client.allReports();
      await client.listReports();
    } finally {
      await client.close();
    }
    expect(d.seen.map((s) => s.status)).toEqual([200, 200, 200]);
    expect(d.connections).toBe(1);
  });
});
