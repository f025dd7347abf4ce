import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { startFakeIosXe, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { startFakeCssm, FIXTURE_TAG, type FakeCssm, type FakeCssmOptions } from '../helpers/fake-cssm.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Services } from '../../src/services.js';
import type { CloudSyncResult } from '../../src/cssm/cloud-sync.js';

let harnesses: Harness[] = [];
let iosxe: FakeIosXe | undefined;
let cssm: FakeCssm | undefined;
afterEach(async () => {
  for (const h of harnesses) await h.close();
  await iosxe?.stop();
  await cssm?.stop();
  harnesses = [];
  iosxe = cssm = undefined;
});

/** The configuration of a site whose upstream is Cisco's cloud (the fake), over a connection. */
function cloudConfig(ca: TestCa, fake: FakeCssm, virtualAccounts: Record<string, string> = { Default: 'DEFAULT' }) {
  return {
    exchange: { mode: 'connected', upstream: { kind: 'cisco' }, retry: { attempts: 3, baseSeconds: 1, maxSeconds: 1 } },
    cisco: {
      caFile: ca.caFile, timeoutSeconds: 3, retries: 0,
      cloud: {
        tokenUrl: fake.tokenUrl, apiUrl: `${fake.url}/smart-accounts-and-licensing`, clientId: fake.clientId, domain: fake.domain,
        virtualAccounts, caFile: ca.caFile, pollSeconds: 1, maxPollMinutes: 1, timeoutSeconds: 5,
      },
    },
  };
}

async function site(ca: TestCa, fake: FakeCssm, map?: Record<string, string>): Promise<Harness> {
  const h = await startHarness({ config: cloudConfig(ca, fake, map) });
  harnesses.push(h);
  await h.api.post('/api/v1/cisco/cloud/credentials').send({ clientSecret: fake.clientSecret }).expect(200);
  return h;
}

async function addDevices(h: Harness, fake: FakeIosXe, indexes: number[], vaId = h.defaultVa): Promise<void> {
  for (const i of indexes) {
    const d = fake.device(i);
    await h.api.post('/api/v1/cisco/devices').send({ name: `sw-${i}`, host: d.host, port: d.port, username: d.username, password: d.password, vaId }).expect(201);
  }
  const polled = (await h.api.post('/api/v1/cisco/poll').send({}).expect(200)).body.items;
  expect(polled.every((p: { ok: boolean }) => p.ok)).toBe(true);
}

const sync = async (h: Harness) => (await h.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result as CloudSyncResult;
const status = async (h: Harness) => (await h.api.get('/api/v1/exchange/status').expect(200)).body;

async function start(o: FakeCssmOptions = {}, devices = 2) {
  const ca = makeTestCa();
  iosxe = await startFakeIosXe({ count: devices, ca });
  cssm = await startFakeCssm({ ca, pollsBeforeComplete: 1, ...o });
  return ca;
}

describe("Cisco's cloud as the upstream", () => {
  it('when polled devices are synced, then each device file goes up once, each device receives its own ACK, and the positions become the compliance', async () => {
    const ca = await start();
    const h = await site(ca, cssm!);
    await addDevices(h, iosxe!, [0, 1]);
    const native = await h.registered();
    await native.sendReport(native.report(TAG, 1));

    const r = await sync(h);
    expect(r).toMatchObject({ status: 'synced', error: null });
    expect(r.usage).toMatchObject({ uploads: 2, reportsUploaded: 4, completed: 2, acknowledged: 4, alreadyUploaded: 0, stillPolling: 0, failed: [], unmapped: [] });
    expect(cssm!.duplicates()).toEqual([]);
    expect(cssm!.uploads().map((u) => [u.udi.serial, u.reportIds.length]).sort()).toEqual(iosxe!.devices.map((d) => [d.udi.serial, 2]).sort());
    // Each device gets exactly its own ACK, as CSSM gave it.
    for (const d of iosxe!.devices) {
      expect(d.imports).toHaveLength(1);
      expect(d.imports[0]!.text).toContain('<smartLicenseRumAck>');
      expect(d.imports[0]!.text).toContain(d.udi.serial);
    }
    const s = await status(h);
    expect(s).toMatchObject({ upstream: { kind: 'cisco' }, waiting: { reports: 0 }, lastError: null, uploads: { complete: { uploads: 2, reports: 4 } } });
    expect(s.destinations).toEqual([{ destination: 'cssm', waiting: 0, oldestWaitingSince: null }]);
    // An Outpost device's own report stays local with the Cisco upstream: counted, no ACK expected.
    const own = (await h.api.get(`/api/v1/devices/${native.deviceId}/reports`).expect(200)).body.items[0];
    expect(own).toMatchObject({ acknowledgements: [], settled: true });

    // Positions: the tagged license is the VA's entitlement; the untagged one is shown, not counted.
    const positions = (await h.api.get('/api/v1/cisco/positions').expect(200)).body.items;
    const inUse = h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE va_id = ? AND tag = ?', h.defaultVa, FIXTURE_TAG);
    expect(positions).toEqual([
      expect.objectContaining({ license: 'C9800 Wireless Advantage', tag: null, quantity: 50, cssmInUse: 55, localInUse: null }),
      expect.objectContaining({ license: 'DNA Network Stack', tag: FIXTURE_TAG, quantity: 100, cssmInUse: 40, localInUse: inUse, difference: 40 - inUse }),
    ]);
    const compliance = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/compliance`).expect(200)).body;
    expect(compliance.tags.find((t: { tag: string }) => t.tag === FIXTURE_TAG)).toMatchObject({ owned: 100 });

    // The next sync sends nothing again.
    const uploadsBefore = cssm!.requests().filter((q) => q.path.endsWith('/reportusage')).length;
    expect((await sync(h)).usage).toMatchObject({ uploads: 0, completed: 0 });
    expect(cssm!.requests().filter((q) => q.path.endsWith('/reportusage')).length).toBe(uploadsBefore);
  });

  it('when a token is refused mid-sync, CSSM answers 429 with Retry-After and 500s, then the sync still completes, with one new token and nothing sent twice', async () => {
    const ca = await start({}, 1);
    const h = await site(ca, cssm!);
    await addDevices(h, iosxe!, [0]);
    cssm!.fault({ path: '/reportusage', status: 401, times: 1 });
    cssm!.fault({ path: '/accounts/poll', status: 429, times: 1, retryAfterSeconds: 1 });
    cssm!.fault({ path: '/licenses', status: 500, times: 2 });
    const r = await sync(h);
    expect(r).toMatchObject({ status: 'synced', usage: { uploads: 1, completed: 1, acknowledged: 2 }, positions: { virtualAccounts: 1 } });
    const seen = cssm!.requests().map((q) => `${q.path.split('/').pop()} ${q.status}`);
    expect(seen.filter((s) => s.startsWith('token'))).toEqual(['token 200', 'token 200']);
    expect(seen.filter((s) => s.startsWith('reportusage'))).toEqual(['reportusage 401', 'reportusage 200']);
    expect(seen.filter((s) => s.startsWith('poll')).slice(0, 2)).toEqual(['poll 429', 'poll 200']);
    expect(seen.filter((s) => s.startsWith('licenses'))).toEqual(['licenses 500', 'licenses 500', 'licenses 200']);
    expect(cssm!.duplicates()).toEqual([]);
  });

  it('when a device holds more reports than one upload carries, then they go in several uploads, each answered once', async () => {
    const ca = makeTestCa();
    iosxe = await startFakeIosXe({ count: 1, ca, reportsPerDevice: 61 });
    cssm = await startFakeCssm({ ca, pollsBeforeComplete: 1 });
    const h = await site(ca, cssm);
    await addDevices(h, iosxe, [0]);
    const r = await sync(h);
    expect(r.usage).toMatchObject({ uploads: 2, reportsUploaded: 61, completed: 2, acknowledged: 61 });
    expect(cssm.uploads().map((u) => u.reportIds.length)).toEqual([50, 11]);
    expect(cssm.duplicates()).toEqual([]);
    expect(iosxe.device(0).imports).toHaveLength(2);
  });

  it('when CSSM keeps failing, then the sync fails with the step and its words, and the reports still wait', async () => {
    const ca = await start({}, 1);
    const h = await site(ca, cssm!);
    await addDevices(h, iosxe!, [0]);
    cssm!.fault({ path: '/reportusage', status: 503, times: 10 });
    const r = await sync(h);
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ step: 'usage', code: 'http' });
    expect(r.error!.message).toContain('503');
    const s = await status(h);
    expect(s.lastError).toMatchObject({ step: 'usage', code: 'http' });
    expect(s.waiting.reports).toBe(2);
  });

  it('when the client secret is wrong, then the sync fails at the token step naming the client, and the secret is in no answer', async () => {
    const ca = await start({}, 1);
    const h = await site(ca, cssm!);
    await h.api.post('/api/v1/cisco/cloud/credentials').send({ clientSecret: 'not-the-secret' }).expect(200);
    const r = await sync(h);
    expect(r).toMatchObject({ status: 'failed', error: { step: 'token', code: 'token_refused' } });
    expect(r.error!.message).toContain(cssm!.clientId);
    const s = JSON.stringify(await status(h));
    expect(s).not.toContain('not-the-secret');
    expect(s).not.toContain(cssm!.clientSecret);
    const sealed = h.services.db.prepare("SELECT value FROM meta WHERE key = 'cssm.client_secret'").pluck().get() as string;
    expect(sealed.startsWith('v1:')).toBe(true);
    expect(sealed).not.toContain('not-the-secret');
  });

  it('when a device\'s reports were uploaded before by another system, then those are marked already uploaded, the new one still goes, and none is retried', async () => {
    const ca = await start({}, 1);
    const first = await site(ca, cssm!);
    await addDevices(first, iosxe!, [0]);
    expect((await sync(first)).usage).toMatchObject({ uploads: 1, reportsUploaded: 2 });
    // The device measures on; a second collector takes it over and polls all three reports.
    iosxe!.grow(0);
    const second = await site(ca, cssm!);
    await addDevices(second, iosxe!, [0]);
    const r = await sync(second);
    expect(r.usage).toMatchObject({ uploads: 1, reportsUploaded: 1, alreadyUploaded: 2, completed: 1, acknowledged: 1, failed: [] });
    expect(cssm!.duplicates()).toEqual([]);
    const s = await status(second);
    expect(s).toMatchObject({ alreadyUploaded: 2, waiting: { reports: 0 } });
    const requests = cssm!.requests().length;
    expect((await sync(second)).usage).toMatchObject({ uploads: 0, alreadyUploaded: 0 });
    expect(cssm!.requests().filter((q, i) => i >= requests && q.path.endsWith('/reportusage'))).toEqual([]);
  });

  it('when a VA is not mapped to a CSSM virtual account, then its reports wait, an alert names it, and the mapped ones still go', async () => {
    const ca = await start({}, 2);
    const h = await site(ca, cssm!);
    const lab = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Lab' }).expect(201)).body.id as string;
    await addDevices(h, iosxe!, [0]);
    await addDevices(h, iosxe!, [1], lab);
    const r = await sync(h);
    expect(r.usage).toMatchObject({ uploads: 1, reportsUploaded: 2 });
    expect(r.usage!.unmapped).toEqual([{ va: 'Lab', reports: 2, problem: expect.stringContaining('not mapped') }]);
    const alerts = (await h.api.get('/api/v1/alerts?kind=cloud_unmapped_va').expect(200)).body.items;
    expect(alerts).toEqual([expect.objectContaining({ subject: 'Lab' })]);
    expect((await status(h)).waiting.reports).toBe(2);
    const accounts = (await h.api.get('/api/v1/cisco/accounts').expect(200)).body;
    expect(accounts.resolved.mappings.find((m: { vaName: string }) => m.vaName === 'Lab')).toMatchObject({ cssm: null });
    expect(accounts.resolved.unmappedCssm).toEqual(['Campus']);
  });
});

describe("ACKs from Cisco's cloud for devices Outpost does not poll", () => {
  it('when the reports came from a file, then the ACK waits to be downloaded and imported on the device by hand', async () => {
    const ca = await start({}, 1);
    const h = await site(ca, cssm!);
    const now = Math.floor(Date.now() / 1000);
    const element = rumElement({ pid: 'C9300-24T', serial: 'FILE0001', reportId: 42, tag: TAG, measurements: [{ start: now - 3600, end: now - 60, count: 2 }] });
    await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(smartLicense(element)).expect(200);
    expect((await sync(h)).usage).toMatchObject({ uploads: 1, completed: 1, acknowledged: 1 });
    const [ack] = (await h.api.get('/api/v1/cisco/acks').expect(200)).body.items;
    expect(ack).toMatchObject({ from: 'cssm', udi: 'C9300-24T:FILE0001', deliveredAt: null, lastError: expect.stringContaining('by hand') });
    const one = (await h.api.get(`/api/v1/cisco/acks/cssm/${ack.uploadId}/${ack.devId}`).expect(200)).body;
    expect(one.content).toContain('<smartLicenseRumAck>');
    expect(one.content).toContain('FILE0001');
    await h.api.get(`/api/v1/cisco/acks/cssm/${ack.uploadId}/999999`).expect(404);
  });
});

describe("positions from Cisco's cloud", () => {
  it('when a license has no tag, then an operator maps its name to one, and the next sync counts it; the positions replace what another kind of upstream gave', async () => {
    const ca = await start({}, 1);
    const h = await site(ca, cssm!);
    // Lines an Outpost upstream gave before the switch (its lineage, a high version of its own).
    h.services.licenses.addLine({ vaId: h.defaultVa, tag: TAG, displayName: 'from the Outpost upstream', kind: 'perpetual', quantity: 7, startsAt: 0, endsAt: null }, 'test');
    h.services.db.prepare("INSERT INTO entitlement_versions (va_id, version, lineage) VALUES (?, 40, 'outpost')").run(h.defaultVa);
    const wireless = 'regid.2019-01.com.cisco.C9800_Wireless_Advantage';
    await h.api.post('/api/v1/cisco/license-tags').send({ license: 'C9800 Wireless Advantage', tag: wireless }).expect(200);
    expect((await h.api.get('/api/v1/cisco/license-tags').expect(200)).body.items).toEqual([{ license: 'C9800 Wireless Advantage', tag: wireless, from: 'operator' }]);

    expect((await sync(h)).positions).toMatchObject({ virtualAccounts: 1, positions: 2, untagged: 0 });
    const lines = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/entitlements`).expect(200)).body.items as { tag: string; quantity: number; displayName: string }[];
    expect(lines.map((l) => [l.tag, l.quantity]).sort()).toEqual([[FIXTURE_TAG, 100], [wireless, 50]].sort());
    expect(lines.some((l) => l.displayName === 'from the Outpost upstream')).toBe(false);
    expect(h.services.db.prepare('SELECT lineage, version FROM entitlement_versions WHERE va_id = ?').get(h.defaultVa)).toEqual({ lineage: 'cisco', version: 1 });
    const wirelessCompliance = (await h.api.get(`/api/v1/virtual-accounts/${h.defaultVa}/compliance`).expect(200)).body.tags.find((t: { tag: string }) => t.tag === wireless);
    expect(wirelessCompliance).toMatchObject({ owned: 50 });

    await h.api.delete(`/api/v1/cisco/license-tags/${encodeURIComponent('C9800 Wireless Advantage')}`).expect(200);
    expect((await sync(h)).positions).toMatchObject({ untagged: 1 });
    expect(h.services.db.prepare('SELECT lineage, version FROM entitlement_versions WHERE va_id = ?').get(h.defaultVa)).toEqual({ lineage: 'cisco', version: 2 });
  });
});

describe("Cisco's cloud across a restart", () => {
  it('when the collector stops between an upload and its answer, then the next start polls the same upload, sends nothing again, and delivers the ACK', async () => {
    const ca = await start({ pollsBeforeComplete: 3, duplicateCheck: 'after-complete' }, 1);
    const dir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const build = () =>
      buildServices(
        loadConfig({ env: {}, overrides: { ...cloudConfig(ca, cssm!), dataDir: join(dir, 'data'), exchange: { ...cloudConfig(ca, cssm!).exchange, bundleDir: join(dir, 'bundles') } } as never }),
        { logger: createLogger('error', true) },
      );
    const close = async (s: Services) => {
      await s.ingest.drain();
      s.db.close();
    };
    try {
      let s = build();
      s.cloud.credentials.set(cssm!.clientSecret, 'test');
      const d = iosxe!.device(0);
      s.cisco.devices.add({ name: 'sw-0', host: d.host, port: d.port, username: d.username, password: d.password, vaId: s.accounts.list()[0]!.id, tls: { mode: 'ca' } }, 'test');
      expect((await s.cisco.poller.poll('test'))[0]!.ok).toBe(true);
      void s.cloud.sync.run('test');
      for (let i = 0; i < 100 && !cssm!.uploads().length; i++) await new Promise((r) => setTimeout(r, 20));
      expect(cssm!.uploads()).toHaveLength(1);
      await s.cloud.sync.stop(); // as a stop would: the upload is CSSM's, its answer not yet read
      expect(s.db.prepare("SELECT state, poll_id IS NOT NULL AS has FROM cssm_uploads").all()).toEqual([{ state: 'polling', has: 1 }]);
      await close(s);

      s = build();
      const r = await s.cloud.sync.run('test');
      expect(r.usage).toMatchObject({ uploads: 0, completed: 1, acknowledged: 2 });
      expect(cssm!.uploads()).toHaveLength(1);
      expect(cssm!.duplicates()).toEqual([]);
      expect(iosxe!.device(0).imports).toHaveLength(1);
      await close(s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
