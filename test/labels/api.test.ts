import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import { bearerOf, seedDevices } from './seed.js';

let h: Harness;
let vaA: string;
let vaB: string;
const bearer: Record<'admin' | 'operator' | 'vaAdminA' | 'vaViewerA', string> = { admin: '', operator: '', vaAdminA: '', vaViewerA: '' };
let c9300A: string[];
let c9300B: string[];
let c9200A: string[];

const as = (who: keyof typeof bearer) => ({
  get: (p: string) => h.api.get(`/api/v1${p}`).set('authorization', `Bearer ${bearer[who]}`),
  post: (p: string, body: object) => h.api.post(`/api/v1${p}`).set('authorization', `Bearer ${bearer[who]}`).send(body),
  patch: (p: string, body: object) => h.api.patch(`/api/v1${p}`).set('authorization', `Bearer ${bearer[who]}`).send(body),
  delete: (p: string) => h.api.delete(`/api/v1${p}`).set('authorization', `Bearer ${bearer[who]}`),
});
const admin = as('admin');
const labelRows = () => h.count('SELECT count(*) AS n FROM labels');
const attachments = () => h.count('SELECT (SELECT count(*) FROM device_labels) + (SELECT count(*) FROM line_labels) AS n');
const eventsOf = (type: string) =>
  (h.services.db.prepare('SELECT va_id, details FROM events WHERE type = ? ORDER BY id').all(type) as { va_id: string | null; details: string }[]).map((e) => ({
    vaId: e.va_id, ...JSON.parse(e.details),
  }));
const idsOf = (body: { items: { id: string }[] }) => body.items.map((d) => d.id).sort();

beforeAll(async () => {
  h = await startHarness();
  vaA = h.defaultVa;
  vaB = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id;
  c9300A = seedDevices(h.services, vaA, 'C9300-24T', 3);
  c9300B = seedDevices(h.services, vaB, 'C9300-48P', 2);
  c9200A = seedDevices(h.services, vaA, 'C9200-24T', 2);
  bearer.admin = await bearerOf(h.services, 'ann', [{ role: 'admin' }]);
  bearer.operator = await bearerOf(h.services, 'otto', [{ role: 'operator' }]);
  bearer.vaAdminA = await bearerOf(h.services, 'vera', [{ role: 'va-admin', vaId: vaA }]);
  bearer.vaViewerA = await bearerOf(h.services, 'vic', [{ role: 'va-viewer', vaId: vaA }]);
});
afterAll(() => h.close());

describe('labels: create, change, delete', () => {
  it('when an operator creates labels, then they are listed by name with their colour, and a name differing only in case is refused', async () => {
    const core = (await as('operator').post('/labels', { name: 'Core', colour: '#1A7F37', description: 'Core switches' }).expect(201)).body;
    expect(core).toMatchObject({ name: 'Core', colour: '#1a7f37', description: 'Core switches', devices: 0, lines: 0 });
    await admin.post('/labels', { name: 'Campus', colour: '#0969da' }).expect(201);
    const dup = await admin.post('/labels', { name: 'CORE', colour: '#000000' }).expect(409);
    expect(dup.body.error.message).toMatch(/^name: a label named CORE already exists/);
    expect((await admin.get('/labels').expect(200)).body.items.map((l: { name: string }) => l.name)).toEqual(['Campus', 'Core']);
    expect((await admin.get('/labels/core').expect(200)).body.id).toBe(core.id);
    expect(eventsOf('label.created').map((e) => e.name)).toEqual(['Core', 'Campus']);
  });

  it('when a label is invalid, then the answer is a 400 naming the field, and nothing changes', async () => {
    const before = labelRows();
    const cases: [object, RegExp][] = [
      [{ name: '', colour: '#000000' }, /^body: name: a label name needs 1 to 64 characters/],
      [{ name: 'x'.repeat(65), colour: '#000000' }, /^body: name: a label name needs 1 to 64 characters/],
      [{ name: 'semi;colon', colour: '#000000' }, /^body: name: a label name starts with a letter or digit/],
      [{ name: 'Red', colour: 'red' }, /^body: colour: a colour is #rrggbb/],
      [{ name: 'Red', colour: '#12345' }, /^body: colour: a colour is #rrggbb/],
      [{ name: 'Red' }, /^body: colour:/],
      [{ name: 'Red', colour: '#ff0000', description: 'd'.repeat(501) }, /^body: description: a description holds at most 500/],
      [{ name: 'Red', colour: '#ff0000', owner: 'me' }, /^body: /],
    ];
    for (const [body, message] of cases) {
      const r = await admin.post('/labels', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message).toMatch(message);
    }
    expect((await admin.patch('/labels/Core', {}).expect(400)).body.error.message).toMatch(/name, colour or description/);
    expect((await admin.patch('/labels/Core', { colour: 'blue' }).expect(400)).body.error.message).toMatch(/^body: colour:/);
    expect((await admin.patch('/labels/Core', { name: 'campus' }).expect(409)).body.error.message).toMatch(/^name: a label named Campus already exists/);
    expect(labelRows()).toBe(before);
    expect((await admin.get('/labels/Core').expect(200)).body).toMatchObject({ name: 'Core', colour: '#1a7f37' });
  });

  it('when a VA-scoped admin tries to define a label, then it is refused: a label is collector-wide', async () => {
    await as('vaAdminA').post('/labels', { name: 'Mine', colour: '#ffffff' }).expect(403);
    await as('vaAdminA').patch('/labels/Core', { colour: '#ffffff' }).expect(403);
    await as('vaAdminA').delete('/labels/Core').expect(403);
    expect((await admin.get('/labels/Core').expect(200)).body.colour).toBe('#1a7f37');
  });

  it('when a label is renamed and recoloured, then the change is an event naming what changed', async () => {
    const r = (await admin.patch('/labels/campus', { name: 'Campus edge', colour: '#BF3989' }).expect(200)).body;
    expect(r).toMatchObject({ name: 'Campus edge', colour: '#bf3989' });
    expect(eventsOf('label.updated').at(-1)).toMatchObject({ name: 'Campus edge', changed: { name: { from: 'Campus', to: 'Campus edge' }, colour: { from: '#0969da', to: '#bf3989' } } });
  });
});

describe('labels: bulk attach by filter, within the caller\'s VAs', () => {
  it("when a VA admin attaches by a filter that would match another VA's devices too, then only its own VA's are labelled", async () => {
    const r = (await as('vaAdminA').post('/labels/Core/attach', { deviceFilter: { pid: 'C9300-*' } }).expect(200)).body;
    expect(r).toEqual({ label: 'Core', target: 'devices', changed: 3, byVa: { [vaA]: 3 } });
    expect(h.count('SELECT count(*) AS n FROM device_labels')).toBe(3);
    expect(eventsOf('label.attached')).toEqual([
      { vaId: vaA, name: 'Core', target: 'devices', count: 3, by: 'filter', filter: { pid: 'C9300-*' } },
    ]);
  });

  it("when a VA admin names another VA, by filter or by device id, then it is refused and nothing is attached", async () => {
    const before = attachments();
    const byFilter = await as('vaAdminA').post('/labels/Core/attach', { deviceFilter: { vaId: vaB } }).expect(403);
    expect(byFilter.body.error.message).toMatch(/^deviceFilter.vaId: /);
    const byId = await as('vaAdminA').post('/labels/Core/attach', { devices: [c9300A[0], c9300B[0]] }).expect(403);
    expect(byId.body.error.message).toMatch(/^devices: device .* is in a virtual account you have no role on/);
    await as('vaViewerA').post('/labels/Core/attach', { devices: [c9300A[0]] }).expect(403);
    expect(attachments()).toBe(before);
  });

  it('when the target is missing, doubled or unknown, then the answer is a 400 or 404 saying which, and nothing is attached', async () => {
    const before = attachments();
    expect((await admin.post('/labels/Core/attach', {}).expect(400)).body.error.message).toMatch(/name exactly one of devices, deviceFilter, lines, lineFilter/);
    expect((await admin.post('/labels/Core/attach', { devices: [c9300A[0]], deviceFilter: {} }).expect(400)).body.error.message).toMatch(/got devices, deviceFilter/);
    expect((await admin.post('/labels/Core/attach', { deviceFilter: { status: 'gone' } }).expect(400)).body.error.message).toMatch(/^body: deviceFilter.status/);
    expect((await admin.post('/labels/Core/attach', { deviceFilter: { label: ['Nope'] } }).expect(400)).body.error.message).toMatch(/^label: no label named Nope/);
    expect((await admin.post('/labels/Core/attach', { devices: [c9300A[0], 'dev_nope'] }).expect(404)).body.error.message).toMatch(/dev_nope/);
    await admin.post('/labels/Nope/attach', { devices: [c9300A[0]] }).expect(404);
    expect(attachments()).toBe(before);
  });

  it('when an operator attaches by the same filter collector-wide, then the devices that already carried it are not counted again', async () => {
    const r = (await admin.post('/labels/core/attach', { deviceFilter: { pid: 'C9300-*' } }).expect(200)).body;
    expect(r).toEqual({ label: 'Core', target: 'devices', changed: 2, byVa: { [vaB]: 2 } });
    await admin.post('/labels/Campus edge/attach', { devices: [c9300A[0], c9200A[0]] }).expect(200);
  });
});

describe('labels: every list filters by label', () => {
  it('when the device list is filtered by one label, or by two, then it shows the devices carrying all of them, each with its labels', async () => {
    expect(idsOf((await admin.get('/devices?label=core').expect(200)).body)).toEqual([...c9300A, ...c9300B].sort());
    const both = (await admin.get(`/devices?label=Core&label=${encodeURIComponent('Campus edge')}`).expect(200)).body;
    expect(idsOf(both)).toEqual([c9300A[0]]);
    expect(both.items[0].labels).toEqual([{ name: 'Campus edge', colour: '#bf3989' }, { name: 'Core', colour: '#1a7f37' }]);
    expect((await admin.get(`/devices/${c9200A[1]}`).expect(200)).body.labels).toEqual([]);
    // Paged: the label filter keeps the cursor working.
    const page = (await admin.get('/devices?label=Core&limit=2&sort=serial').expect(200)).body;
    const rest = (await admin.get(`/devices?label=Core&limit=10&sort=serial&cursor=${page.nextCursor}`).expect(200)).body;
    expect([...idsOf(page), ...idsOf(rest)].sort()).toEqual([...c9300A, ...c9300B].sort());
    // A VA-scoped reader sees its own VA's labelled devices only.
    expect(idsOf((await as('vaViewerA').get('/devices?label=Core').expect(200)).body)).toEqual([...c9300A].sort());
    expect((await as('vaViewerA').get('/labels/Core').expect(200)).body.devices).toBe(3);
    expect((await admin.get('/devices?label=Nope').expect(400)).body.error.message).toMatch(/^label: no label named Nope/);
  });

  it('when the devices CSV is filtered by label, then its rows are the labelled devices, with a labels column', async () => {
    const text = (await admin.get(`/devices.csv?label=Core&vaId=${vaA}`).expect(200)).text;
    const [head, ...rows] = text.trim().split('\r\n');
    expect(head!.split(',').at(-1)).toBe('labels');
    expect(rows.map((r) => r.split(',')[0]).sort()).toEqual([...c9300A].sort());
    expect(rows.find((r) => r.startsWith(c9300A[0]!))!.split(',').at(-1)).toBe('Campus edge; Core');
    expect((await admin.get('/devices.csv').expect(200)).text).toContain(`${c9200A[1]},`);
  });

  it('when entitlement lines are labelled, then their list and the licenses CSV filter by label and show the labels', async () => {
    const line1 = h.services.licenses.addLine({ vaId: vaA, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 10, startsAt: 0, endsAt: null }, 'test');
    const line2 = h.services.licenses.addLine({ vaId: vaA, tag: TAG2, displayName: 'Adv', kind: 'term', quantity: 5, startsAt: 0, endsAt: 4_000_000_000_000 }, 'test');
    h.services.licenses.addLine({ vaId: vaB, tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 3, startsAt: 0, endsAt: null }, 'test');
    await admin.post('/labels', { name: 'Renewal 2027', colour: '#9a6700' }).expect(201);
    expect((await as('vaAdminA').post('/labels/Renewal 2027/attach', { lineFilter: { tag: TAG } }).expect(200)).body).toMatchObject({ target: 'lines', changed: 1, byVa: { [vaA]: 1 } });
    await as('vaAdminA').post('/labels/Core/attach', { lines: [line2.id] }).expect(200);
    const lines = (await admin.get(`/virtual-accounts/${vaA}/entitlements?label=${encodeURIComponent('Renewal 2027')}`).expect(200)).body.items;
    expect(lines.map((l: { id: string }) => l.id)).toEqual([line1.id]);
    expect(lines[0].labels).toEqual([{ name: 'Renewal 2027', colour: '#9a6700' }]);
    expect((await admin.get(`/virtual-accounts/${vaB}/entitlements`).expect(200)).body.items[0].labels).toEqual([]);
    const csv = (await admin.get('/licenses.csv?label=Core').expect(200)).text.trim().split('\r\n');
    expect(csv[0]!.split(',').at(-1)).toBe('line_labels');
    // A tag holds a comma (quoted in its cell): the line id is found by its form.
    expect(csv.slice(1).map((r) => /ent_\w+/.exec(r)?.[0])).toEqual([line2.id]);
    expect(csv[1]!.split(',').at(-1)).toBe('Core');
    expect((await admin.get('/licenses.csv').expect(200)).text.trim().split('\r\n').length).toBe(4);
  });

  it("when a snapshot replaces a VA's lines, then each line keeps its labels; a label detached before does not come back", async () => {
    const snapshot = () =>
      h.services.db.transaction(() => {
        const lines = h.services.licenses.entitlements.byVa(vaA);
        h.services.db.prepare('DELETE FROM entitlements WHERE va_id = ?').run(vaA);
        for (const l of lines) h.services.licenses.entitlements.insert({ ...l, id: `${l.id}x`, quantity: l.quantity + 1 });
      })();
    snapshot();
    const labelled = async () =>
      Object.fromEntries(((await admin.get(`/virtual-accounts/${vaA}/entitlements`).expect(200)).body.items as { tag: string; labels: { name: string }[] }[]).map((l) => [l.tag, l.labels.map((x) => x.name)]));
    expect(await labelled()).toEqual({ [TAG]: ['Renewal 2027'], [TAG2]: ['Core'] });
    const tag2Line = h.services.licenses.entitlements.byVa(vaA).find((l) => l.tag === TAG2)!;
    expect((await admin.post('/labels/Core/detach', { lines: [tag2Line.id] }).expect(200)).body.changed).toBe(1);
    snapshot();
    expect(await labelled()).toEqual({ [TAG]: ['Renewal 2027'], [TAG2]: [] });
  });
});

describe('labels: detach and delete', () => {
  it('when devices are detached by filter, then the answer counts them and the event says how many', async () => {
    const r = (await admin.post('/labels/Core/detach', { deviceFilter: { vaId: vaB } }).expect(200)).body;
    expect(r).toEqual({ label: 'Core', target: 'devices', changed: 2, byVa: { [vaB]: 2 } });
    expect(eventsOf('label.detached').at(-1)).toMatchObject({ vaId: vaB, name: 'Core', target: 'devices', count: 2, by: 'filter' });
  });

  it('when a label is deleted, then it is detached from every device and line at once, and the event counts them', async () => {
    const r = (await as('operator').delete('/labels/Core').expect(200)).body;
    expect(r).toEqual({ name: 'Core', detached: { devices: 3, lines: 0 } });
    expect(h.count("SELECT count(*) AS n FROM device_labels dl JOIN labels l ON l.id = dl.label_id WHERE l.name = 'Core'")).toBe(0);
    expect(h.count('SELECT count(*) AS n FROM device_labels')).toBe(2); // Campus edge's
    expect(eventsOf('label.deleted')).toEqual([{ vaId: null, name: 'Core', devices: 3, lines: 0 }]);
    await admin.get('/labels/Core').expect(404);
    expect((await admin.get('/devices?label=Core').expect(400)).body.error.code).toBe('unknown_label');
  });
});
