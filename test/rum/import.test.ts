import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/rum/c9800-cl-example.xml', import.meta.url));
const FIXTURE_TAG = 'regid.2018-06.com.cisco.DNA_NWStack,1.0_e7244e71-3ad5-4608-8bf0-d12f67c80896';

let h: Harness;
beforeEach(async () => {
  // These files end years ago (the real fixture in 2022): a stale age that old keeps their
  // devices counting; what a file past the stale age does is in stale-at-import.test.ts.
  h = await startHarness({ config: { device: { staleAfterDays: 36_500 } } });
});
afterEach(() => h.close());

const upload = (xml: string, q = '') =>
  h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}${q}`).set('content-type', 'application/xml').send(xml);
const inUse = (tag = TAG) => h.count('SELECT coalesce(sum(in_use), 0) FROM va_usage WHERE tag = ?', tag);
const day = 86_400;

describe('when the real device fixture is imported', () => {
  it('then the device is created from its UDI, its latest measurement counts, and the original bytes are kept', async () => {
    const xml = readFileSync(FIXTURE, 'utf8');
    const r = await upload(xml);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ elements: 1, accepted: 1, devicesCreated: 1, invalid: [] });
    const dev = (await h.api.get('/api/v1/devices?pid=C9800-CL-K9')).body.items[0];
    expect(dev).toMatchObject({ udi: { pid: 'C9800-CL-K9', serial: '9NTUEA8FIIH' }, source: 'rum', vaId: h.defaultVa, softwareVersion: '17.09.02' });
    expect(inUse(FIXTURE_TAG)).toBe(3);
    const stored = h.services.db.prepare("SELECT body, report_id FROM reports WHERE source = 'rum'").get() as { body: string; report_id: string };
    expect(stored.report_id).toBe('C9800-CL-K9:9NTUEA8FIIH:1671840750');
    expect(xml).toContain(stored.body);
    expect(stored.body.startsWith('<RUMReport>') && stored.body.endsWith('</RUMReport>')).toBe(true);
  });

  it('then importing it again is a duplicate that changes nothing', async () => {
    const xml = readFileSync(FIXTURE, 'utf8');
    await upload(xml).expect(200);
    const again = await upload(xml);
    expect(again.body).toMatchObject({ accepted: 0, duplicate: 1, devicesCreated: 0 });
    expect(h.count('SELECT count(*) FROM reports')).toBe(1);
  });
});

describe('when a file holds many reports', () => {
  it('then each counts for its own device, wrapped in <smartLicense> or bare', async () => {
    const t = 1_700_000_000;
    const els = [1, 2, 3].map((i) => rumElement({ pid: 'C9300-48P', serial: `FOC00${i}`, reportId: t + i, tag: TAG, measurements: [{ start: t, end: t + day, count: i }] }));
    const r = await upload(smartLicense(...els));
    expect(r.body).toMatchObject({ elements: 3, accepted: 3, devicesCreated: 3 });
    expect(inUse()).toBe(6);
    const bare = rumElement({ pid: 'C9300-48P', serial: 'FOC004', reportId: t, tag: TAG, measurements: [{ start: t, end: t + day, count: 4 }] });
    expect((await upload(`<?xml version="1.0"?>\n<!-- saved by hand -->\n${bare}\n${bare}`)).body).toMatchObject({ accepted: 1, duplicate: 1 });
    expect(inUse()).toBe(10);
  });
});

describe('when an open report grows', () => {
  it('then the later copy with more measurements replaces the earlier, and an older copy changes nothing', async () => {
    const t = 1_700_000_000;
    const spec = { pid: 'C9300-24T', serial: 'FOCGROW', reportId: 42, tag: TAG };
    const short = rumElement({ ...spec, measurements: [{ start: t, end: t + day, count: 2 }] });
    const grown = rumElement({ ...spec, measurements: [{ start: t, end: t + day, count: 2 }, { start: t + day, end: t + 2 * day, count: 5 }] });
    await upload(short).expect(200);
    expect(inUse()).toBe(2);
    expect((await upload(grown)).body).toMatchObject({ replaced: 1 });
    expect(inUse()).toBe(5);
    expect(h.count('SELECT count(*) FROM reports')).toBe(1);
    expect(h.count('SELECT measurement_count FROM reports')).toBe(2);
    expect((await upload(short)).body).toMatchObject({ superseded: 1 });
    expect(inUse()).toBe(5);
  });
});

describe('when an HA pair switches over', () => {
  it('then both units are one device, whichever reports, and usage counts once', async () => {
    const t = 1_700_000_000;
    const a = { pid: 'C9800-80-K9', serial: 'UNIT-A' };
    const b = { pid: 'C9800-80-K9', serial: 'UNIT-B' };
    const fromA = rumElement({ ...a, reportId: 1, tag: TAG, ha: [{ ...a, role: 'Active' }, { ...b, role: 'Standby' }], measurements: [{ start: t, end: t + day, count: 4 }] });
    const fromB = rumElement({ ...b, reportId: 2, tag: TAG, ha: [{ ...b, role: 'Active' }, { ...a, role: 'Standby' }], measurements: [{ start: t + day, end: t + 2 * day, count: 6 }] });
    expect((await upload(fromA)).body.devicesCreated).toBe(1);
    const r = await upload(fromB);
    expect(r.body).toMatchObject({ accepted: 1, devicesCreated: 0 });
    expect(h.count('SELECT count(*) FROM devices')).toBe(1);
    expect(inUse()).toBe(6);
    const dev = (await h.api.get('/api/v1/devices')).body.items[0];
    expect(dev.udis).toEqual(['C9800-80-K9:UNIT-A', 'C9800-80-K9:UNIT-B']);
  });
});

describe('when a file is malformed', () => {
  const t = 1_700_000_000;
  const good = rumElement({ pid: 'C9300-24T', serial: 'FOCGOOD', reportId: 1, tag: TAG, measurements: [{ start: t, end: t + day, count: 2 }] });
  const badCount = good.replace('\\"value\\":\\"2\\"', '\\"value\\":\\"-2\\"');

  it('then nothing is written, and the element is named with its position and reason', async () => {
    const r = await upload(smartLicense(good, badCount));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_rum_file');
    expect(r.body.error.message).toMatch(/element 2 at line \d+, column 1: payload\.measurements\[0\]\.value\.value/);
    expect(r.body.error.details.invalid[0]).toMatchObject({ index: 2, line: expect.any(Number), column: 1 });
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
    expect(h.count('SELECT count(*) FROM devices')).toBe(0);
  });

  it('then with skipInvalid the valid elements are imported and the rest listed', async () => {
    const r = await upload(smartLicense(good, badCount, '<RUMReport><![CDATA[{not json]]></RUMReport>'), '&skipInvalid=true');
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.invalid.map((p: { index: number }) => p.index)).toEqual([2, 3]);
    expect(h.count('SELECT count(*) FROM reports')).toBe(1);
  });

  it('then a DTD or entity declaration is refused outright, even with skipInvalid', async () => {
    const xxe = `<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n${good}`;
    const r = await upload(xxe, '&skipInvalid=true');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('DTD');
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
  });

  it('then unexpected elements, unclosed wrappers and empty files are named', async () => {
    expect((await upload('<foo/>')).body.error.message).toContain('expected <RUMReport>');
    expect((await upload(`<smartLicense>${good}`)).body.error.message).toContain('not closed');
    expect((await upload('')).body.error.message).toContain('no <RUMReport>');
    expect((await upload(`<RUMReport><![CDATA[{}]]>`)).body.error.message).toContain('unterminated');
    expect(h.count('SELECT count(*) FROM reports')).toBe(0);
  });

  it('then a report for a VA that does not exist is refused with 404', async () => {
    const r = await h.api.post('/api/v1/usage/rum?vaId=nope').set('content-type', 'application/xml').send(good);
    expect(r.status).toBe(404);
  });
});

describe('when a RUM report names a device that reports with its own key', () => {
  const keyed = async () => {
    const d = await h.registered('FOCREG1');
    await d.sendReport(d.report(TAG, 5));
    const t = Math.floor(Date.now() / 1000);
    // The attack: an unsigned file sets the count to 0 with a period ending in the year 3000.
    const rum = (count: number, end: number, reportId = 9) =>
      rumElement({ pid: 'C9300-24T', serial: 'FOCREG1', reportId, tag: TAG, measurements: [{ start: t - day, end, count }] });
    return { d, t, rum };
  };

  it('then the element is refused with the reason, and the signed count stands', async () => {
    const { d, t, rum } = await keyed();
    const r = await upload(rum(0, t));
    expect(r.status).toBe(400);
    expect(r.body.error.details.invalid[0].reason).toContain('reports with its own key');
    expect(r.body.error.details.invalid[0].reason).toContain('--override-signed');
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(5);
    expect(h.count("SELECT count(*) FROM reports WHERE source = 'rum'")).toBe(0);
  });

  it('then with overrideSigned the operator may import it, and an event names who and which device', async () => {
    const { d, t, rum } = await keyed();
    const r = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}&overrideSigned=true&fileName=fix.xml`).set('content-type', 'application/xml').send(smartLicense(rum(7, t)));
    expect(r.status).toBe(200);
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(7);
    const ev = (await h.api.get('/api/v1/events?type=usage.rum_overrode_signed')).body.items[0];
    expect(ev).toMatchObject({ actor: 'operator', details: { devices: [d.deviceId] } });
  });

  it('then a measurement ending further ahead than rum.maxFutureSkewSeconds is refused, even with overrideSigned', async () => {
    const { d, rum } = await keyed();
    const r = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}&overrideSigned=true`).set('content-type', 'application/xml').send(smartLicense(rum(0, 32503679999)));
    expect(r.status).toBe(400);
    expect(r.body.error.details.invalid[0].reason).toContain('rum.maxFutureSkewSeconds');
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(5);
    expect((await d.sendReport(d.report(TAG, 6))).status).toBe(200);
    expect(h.count('SELECT count FROM device_usage WHERE device_id = ?', d.deviceId)).toBe(6); // later signed reports still count
  });
});

describe('when a device known from RUM files went stale and a new report arrives', () => {
  it('then it counts again, once', async () => {
    const t = Math.floor(Date.now() / 1000);
    const spec = { pid: 'C9300-24T', serial: 'FOCSTALE', tag: TAG };
    await upload(rumElement({ ...spec, reportId: 1, measurements: [{ start: t - 2 * day, end: t - day, count: 4 }] })).expect(200);
    h.services.db.prepare("UPDATE devices SET last_seen_at = ? WHERE udi_serial = 'FOCSTALE'").run(Date.now() - 36_501 * 86_400_000);
    h.services.evaluateAlerts();
    expect(inUse()).toBe(0);
    await upload(rumElement({ ...spec, reportId: 2, measurements: [{ start: t - day, end: t, count: 3 }] })).expect(200);
    expect(inUse()).toBe(3);
    expect((await h.api.post('/api/v1/compliance/verify')).body.drift).toEqual([]);
  });
});

describe('when a RUM file is malformed in ways that once answered 500', () => {
  it('then a character reference outside what XML allows is a 400 naming it', async () => {
    for (const ref of ['&#x110000;', '&#0;', '&#xD800;', '&#99999999999;']) {
      const r = await upload(`<smartLicense><RUMReport>${ref}</RUMReport></smartLicense>`);
      expect([r.status, r.body.error.code], ref).toEqual([400, 'invalid_rum_file']);
      expect(r.body.error.message).toContain(ref);
    }
  });

  it('then a report with 200,000 measurements is a 400 naming the limit, and nothing is written', async () => {
    const t = Math.floor(Date.now() / 1000) - 300_000;
    const measurements = Array.from({ length: 200_000 }, (_, i) => ({ start: t + i, end: t + i + 1, count: 1 }));
    const r = await upload(smartLicense(rumElement({ pid: 'C9300-24T', serial: 'BIG200K', reportId: 1, tag: TAG, measurements })));
    expect([r.status, r.body.error.code]).toEqual([400, 'invalid_rum_file']);
    expect(r.body.error.message).toContain('10000');
    expect(h.count('SELECT count(*) FROM devices')).toBe(0);
  });
});
