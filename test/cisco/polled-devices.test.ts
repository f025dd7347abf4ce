import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.close());

const PIN = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0')).join(':');
const device = (over: Record<string, unknown> = {}) => ({ name: 'sw-1', host: '10.0.0.1', port: 443, username: 'lic', password: 's3cret-Pa55!', vaId: h.defaultVa, ...over });

describe('IOS-XE devices to poll', () => {
  it('when a device is added, then it is listed without its password, and the password is sealed apart from the database', async () => {
    const added = (await h.api.post('/api/v1/cisco/devices').send(device()).expect(201)).body;
    expect(added).toMatchObject({ name: 'sw-1', host: '10.0.0.1', port: 443, username: 'lic', vaId: h.defaultVa, tls: { mode: 'ca', pin: null }, lastPollAt: null });
    expect(JSON.stringify(added)).not.toContain('s3cret');
    const list = (await h.api.get('/api/v1/cisco/devices').expect(200)).body.items;
    expect(list).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain('s3cret');
    // The database holds no trace of it; the key that opens it is a 0600 file of its own.
    const db = readFileSync(join(h.dir, 'data', 'outpost.db'));
    expect(db.includes(Buffer.from('s3cret-Pa55!'))).toBe(false);
    expect(h.services.cisco.devices.password(added.id)).toBe('s3cret-Pa55!');
    expect(statSync(join(h.config.dataDir, 'keys', 'secrets.key')).mode & 0o777).toBe(0o600);
    // Nor does the trail.
    const events = JSON.stringify((await h.api.get('/api/v1/events?type=cisco.*')).body);
    expect(events).toContain('cisco.device_added');
    expect(events).not.toContain('s3cret');
  });

  it('when a sealed password is moved to another device, then it does not open there', async () => {
    const a = (await h.api.post('/api/v1/cisco/devices').send(device()).expect(201)).body;
    const b = (await h.api.post('/api/v1/cisco/devices').send(device({ name: 'sw-2', host: '10.0.0.2' })).expect(201)).body;
    h.services.db.prepare('UPDATE polled_devices SET password_enc = (SELECT password_enc FROM polled_devices WHERE id = ?) WHERE id = ?').run(a.id, b.id);
    expect(() => h.services.cisco.devices.password(b.id)).toThrow();
  });

  it('when the same address is added twice, or a pin is missing or malformed, then it is refused naming why, and nothing is added', async () => {
    await h.api.post('/api/v1/cisco/devices').send(device()).expect(201);
    const twice = await h.api.post('/api/v1/cisco/devices').send(device({ name: 'again' }));
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('device_exists');
    const noPin = await h.api.post('/api/v1/cisco/devices').send(device({ host: '10.0.0.9', tls: { mode: 'pin' } }));
    expect(noPin.status).toBe(400);
    expect(noPin.body.error.message).toContain('fingerprint');
    const badPin = await h.api.post('/api/v1/cisco/devices').send(device({ host: '10.0.0.9', tls: { mode: 'pin', pin: 'abc' } }));
    expect(badPin.status).toBe(400);
    const badHost = await h.api.post('/api/v1/cisco/devices').send(device({ host: 'a b/c' }));
    expect(badHost.status).toBe(400);
    expect((await h.api.get('/api/v1/cisco/devices')).body.items).toHaveLength(1);
  });

  it('when a device is edited, then only what is named changes, a new password is sealed, and the trail says what changed without the password', async () => {
    const a = (await h.api.post('/api/v1/cisco/devices').send(device()).expect(201)).body;
    const edited = (await h.api.patch(`/api/v1/cisco/devices/${a.id}`).send({ password: 'n3w-pass', tls: { mode: 'pin', pin: PIN } }).expect(200)).body;
    expect(edited).toMatchObject({ host: '10.0.0.1', tls: { mode: 'pin', pin: PIN } });
    expect(h.services.cisco.devices.password(a.id)).toBe('n3w-pass');
    const changed = (await h.api.get('/api/v1/events?type=cisco.device_changed')).body.items[0];
    expect(JSON.stringify(changed)).not.toContain('n3w-pass');
    expect(changed.details.changed).toEqual(['password (not recorded)', 'tls']);
    expect((await h.api.patch(`/api/v1/cisco/devices/${a.id}`).send({})).status).toBe(400);
    await h.api.delete(`/api/v1/cisco/devices/${a.id}`).expect(200);
    expect((await h.api.get(`/api/v1/cisco/devices/${a.id}`)).status).toBe(404);
  });

  it('when a CSV adds many devices, then all are added; one bad line adds none and names its line and column', async () => {
    const csv = ['name,host,port,username,password,va,tls,pin', `a,10.1.0.1,443,lic,"p,1",Default,ca,`, `b,10.1.0.2,8443,lic,"p""2",Default,pin,${PIN}`, `c,10.1.0.3,443,lic,p3,Default,insecure,`].join('\r\n');
    const r = (await h.api.post('/api/v1/cisco/devices/import').send({ csv }).expect(201)).body;
    expect(r.added.map((d: { name: string }) => d.name)).toEqual(['a', 'b', 'c']);
    expect(h.services.cisco.devices.password(r.added[0].id)).toBe('p,1');
    expect(h.services.cisco.devices.password(r.added[1].id)).toBe('p"2');
    const bad = ['name,host,port,username,password,va', 'd,10.2.0.1,443,lic,p,Default', 'e,10.2.0.2,http,lic,p,Default'].join('\n');
    const refused = await h.api.post('/api/v1/cisco/devices/import').send({ csv: bad });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('line 3, port');
    const unknownVa = await h.api.post('/api/v1/cisco/devices/import').send({ csv: 'name,host,port,username,password,va\nf,10.3.0.1,443,lic,p,Nowhere' });
    expect(unknownVa.status).toBe(404);
    expect(unknownVa.body.error.message).toContain('line 2');
    expect((await h.api.get('/api/v1/cisco/devices')).body.items).toHaveLength(3);
  });
});
