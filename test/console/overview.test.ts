import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, startHarness, TAG, TAG2, type Harness } from '../helpers/harness.js';
import type { Role } from '../../src/users/roles.js';
import type { DeviceRow } from '../../src/devices/repository.js';

/**
 * The console's API through the HTTP app: the overview's figures against the routes that own
 * them, the device table's search, sort and paging, and the CSV downloads.
 */
let h: Harness;
let vaB: string;
const bearer: Record<string, string> = {};

function seedDevice(i: number, o: Partial<DeviceRow> = {}): void {
  h.services.devices.repo.insert({
    id: `dev_t${String(i).padStart(4, '0')}`, va_id: i % 2 ? vaB : h.defaultVa, udi_pid: i % 3 ? 'C9300-48P' : 'ISR4451-X/K9', udi_serial: `FOC${String(1000 + i)}`,
    hostname: `edge-${i}`, software_version: '17.9', public_key: null, pending_public_key: null, pending_since: null,
    status: i % 5 === 0 ? 'stale' : 'active', source: i % 4 === 0 ? 'rum' : 'registered', registered_at: Date.now() - (100 - i) * 60_000,
    last_seen_at: null, last_seq: null, ...o,
  });
}

beforeAll(async () => {
  h = await startHarness();
  vaB = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Branch' }).expect(201)).body.id;
  const now = Date.now();
  h.services.licenses.addLine({ vaId: h.defaultVa, tag: TAG, displayName: 'DNA', kind: 'subscription', quantity: 2, startsAt: now - DAY, endsAt: now + 300 * DAY }, 'test');
  h.services.licenses.addLine({ vaId: vaB, tag: TAG2, displayName: 'Advantage', kind: 'perpetual', quantity: 50, startsAt: now - DAY, endsAt: null }, 'test');
  for (const [va, tag, n] of [[h.defaultVa, TAG, 3], [h.defaultVa, TAG, 2], [vaB, TAG2, 4]] as const) {
    const d = await h.registered(undefined, va);
    await d.sendReport(d.report(tag, n));
  }
  for (let i = 1; i <= 40; i++) seedDevice(i);
  h.services.alerts.raise('token_expiring', { subject: 'x', severity: 'info', message: 'B token', details: { vaId: vaB } });
  h.services.history.sample();
  const yesterday = new Date(Date.parse(h.services.history.today()) - DAY).toISOString().slice(0, 10);
  h.services.history.repo.upsert([{ va_id: h.defaultVa, tag: TAG, day: yesterday, in_use: 1, owned: 2, updated_at: now }]);
  const user = async (name: string, roles: { role: Role; vaId?: string }[]) => {
    const u = await h.services.users.add({ name, password: 'correct horse battery staple', roles }, 'test');
    return h.services.users.createToken(u.id, { name: 't', expiresInDays: 1 }, 'test').secret;
  };
  bearer.auditor = await user('aude', [{ role: 'auditor' }]);
  bearer.viewerB = await user('vic', [{ role: 'va-viewer', vaId: vaB }]);
});
afterAll(() => h.close());

const as = (who: string) => (path: string) => h.api.get(path).set('authorization', `Bearer ${bearer[who]}`);

describe('the overview', () => {
  it('when the overview is read, then each figure equals what the route that owns it answers', async () => {
    const get = as('auditor');
    const o = (await get('/api/v1/overview').expect(200)).body;
    // Licenses: the compliance route's figures, flattened, shortages first.
    const compliance = (await get('/api/v1/compliance').expect(200)).body.items as { vaId: string; tags: { tag: string; owned: number | null; inUse: number; status: string }[] }[];
    const flat = compliance.flatMap((va) => va.tags.map((t) => ({ vaId: va.vaId, tag: t.tag, owned: t.owned, inUse: t.inUse, status: t.status })));
    expect(o.licenses.items.map((l: { vaId: string; tag: string; owned: number | null; inUse: number; status: string }) => ({ vaId: l.vaId, tag: l.tag, owned: l.owned, inUse: l.inUse, status: l.status })).sort(byKey)).toEqual(flat.sort(byKey));
    expect(o.licenses.items[0]).toMatchObject({ vaId: h.defaultVa, tag: TAG, status: 'shortage', owned: 2, inUse: 5, short: 3, available: 0 });
    expect(o.licenses.items.find((l: { tag: string }) => l.tag === TAG2)).toMatchObject({ owned: 50, inUse: 4, available: 46 });
    // Devices by status: the devices list, counted.
    for (const status of ['active', 'stale', 'deregistered']) {
      const listed = (await get(`/api/v1/devices?status=${status}&limit=1000`).expect(200)).body.items.length;
      expect(o.devices.byStatus[status]).toBe(listed);
    }
    expect(o.devices.total).toBe(43);
    // Alerts: the open alerts the alerts route lists.
    const open = (await get('/api/v1/alerts?limit=1000').expect(200)).body.items as { id: number; kind: string; severity: string }[];
    expect(o.alerts.open).toBe(open.length);
    for (const c of o.alerts.byKind) expect(c.count).toBe(open.filter((a) => a.kind === c.kind && a.severity === c.severity).length);
    expect(o.alerts.newest.map((a: { id: number }) => a.id)).toEqual(open.slice(0, 5).map((a) => a.id));
    // Exchange: the exchange status route's figures.
    const x = (await get('/api/v1/exchange/status').expect(200)).body;
    expect(o.exchange).toMatchObject({ mode: x.mode, upstream: 'outpost', lastSuccessAt: x.lastSuccessAt, nextRunAt: x.nextRunAt, waiting: x.destinations });
    expect(o.exchange.waiting[0]).toMatchObject({ destination: 'outpost', waiting: 3 });
    // Since yesterday: today's peak against yesterday's history, and the day's events by type.
    expect(o.changes.usage.find((u: { vaId: string; tag: string }) => u.vaId === h.defaultVa && u.tag === TAG)).toMatchObject({ today: 5, yesterday: 1, change: 4 });
    expect(o.changes.usage.find((u: { tag: string }) => u.tag === TAG2)).toMatchObject({ today: 4, yesterday: null, change: 4 });
    const registered = (await get('/api/v1/events?type=device.registered&limit=1000').expect(200)).body.items.length;
    expect(o.changes.events.byType.find((e: { type: string }) => e.type === 'device.registered').count).toBe(registered);
  });

  it('when a VA-scoped user reads the overview, then it sees its VA only, and not the exchange', async () => {
    const o = (await as('viewerB')('/api/v1/overview').expect(200)).body;
    expect(new Set(o.licenses.items.map((l: { vaId: string }) => l.vaId))).toEqual(new Set([vaB]));
    const listed = (await as('viewerB')('/api/v1/devices?limit=1000').expect(200)).body.items.length;
    expect(o.devices.total).toBe(listed);
    expect(o.devices.total).toBe(21);
    expect(o.exchange).toBeNull();
    expect(o.alerts.newest.map((a: { message: string }) => a.message)).toEqual(['B token']);
    expect(o.changes.usage.every((u: { vaId: string }) => u.vaId === vaB)).toBe(true);
    expect(o.changes.events.byType.every((e: { count: number }) => e.count > 0)).toBe(true);
    await as('viewerB')(`/api/v1/overview?vaId=${h.defaultVa}`).expect(403);
  });
});

const byKey = (a: { vaId: string; tag: string }, b: { vaId: string; tag: string }) => (a.vaId + a.tag).localeCompare(b.vaId + b.tag);

describe('the devices table', () => {
  const ids = async (qs: string) => ((await as('auditor')(`/api/v1/devices?${qs}`).expect(200)).body.items as { id: string }[]).map((d) => d.id);

  it('when searched, then a prefix of the serial, product id, hostname or id matches, in either case for serials', async () => {
    expect(await ids('q=FOC1007')).toEqual(['dev_t0007']);
    expect(await ids('q=foc1007')).toEqual(['dev_t0007']);
    expect(await ids('q=edge-3&limit=1000')).toEqual(['dev_t0003', 'dev_t0030', 'dev_t0031', 'dev_t0032', 'dev_t0033', 'dev_t0034', 'dev_t0035', 'dev_t0036', 'dev_t0037', 'dev_t0038', 'dev_t0039']);
    expect((await ids('q=ISR&limit=1000')).length).toBe(13);
    expect(await ids('q=dev_t004')).toEqual(['dev_t0040']);
    expect(await ids('q=nothing-like-it')).toEqual([]);
  });

  it('when filtered by VA, status and source together, then only devices matching all are listed', async () => {
    const got = await ids(`vaId=${vaB}&status=active&source=rum&limit=1000`);
    const want = Array.from({ length: 40 }, (_, k) => k + 1).filter((i) => i % 2 === 1 && i % 5 !== 0 && i % 4 === 0).map((i) => `dev_t${String(i).padStart(4, '0')}`);
    expect(got).toEqual(want); // odd and divisible by four: none
    expect((await ids('source=rum&status=stale&limit=1000'))).toEqual(['dev_t0020', 'dev_t0040']);
  });

  it('when paged in any sort order, then the pages together hold every device once, in that order', async () => {
    const all = (await as('auditor')('/api/v1/devices?limit=1000').expect(200)).body.items as { id: string; hostname: string; registeredAt: string }[];
    for (const [sort, order, key] of [['hostname', 'desc', (d: { hostname: string }) => d.hostname], ['registered', 'asc', (d: { registeredAt: string }) => d.registeredAt], ['pid', 'asc', null], ['id', 'desc', null]] as const) {
      const seen: { id: string }[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: { id: string }[]; nextCursor: string | null } = (await as('auditor')(`/api/v1/devices?limit=7&sort=${sort}&order=${order}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200)).body;
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen.map((d) => d.id).sort()).toEqual(all.map((d) => d.id).sort());
      expect(new Set(seen.map((d) => d.id)).size).toBe(all.length);
      if (key) {
        const keys = seen.map((d) => key(d as never) as string);
        expect(keys).toEqual([...keys].sort((a, b) => (order === 'desc' ? b.localeCompare(a) : a.localeCompare(b))));
      }
    }
  });

  it('when a cursor is not one the sort made, then it is refused naming the cursor', async () => {
    const r = await as('auditor')('/api/v1/devices?sort=hostname&cursor=not-a-cursor').expect(400);
    expect(r.body.error.code).toBe('invalid_cursor');
    expect(r.body.error.message).toMatch(/cursor/);
    await as('auditor')('/api/v1/devices?sort=lastSeen&cursor=' + Buffer.from('["x","dev"]').toString('base64url')).expect(400);
  });
});

describe('CSV downloads', () => {
  const csv = async (path: string, who = 'auditor') => {
    const r = await as(who)(path).buffer(true).parse((res, cb) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString('utf8')));
      res.on('end', () => cb(null, t));
    }).expect(200);
    expect(r.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="[\w.-]+\.csv"$/);
    return r.body as string;
  };

  it('when a cell starts with = + - @ or holds a comma or a quote, then it is neutralised and quoted as RFC 4180 says', async () => {
    seedDevice(90, { hostname: '=HYPERLINK("http://x","y")', udi_serial: 'S,90', software_version: '+1', udi_pid: '@SUM(A1)' });
    seedDevice(91, { hostname: '-2+3', udi_serial: 'S"91' });
    const text = await csv('/api/v1/devices.csv?q=dev_t009');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('id,va_id,pid,serial,hostname,software_version,status,source,pending_rekey,registered_at,last_seen_at,last_seq,labels');
    expect(lines[1]).toContain(`dev_t0090,${h.defaultVa},'@SUM(A1),"S,90","'=HYPERLINK(""http://x"",""y"")",'+1,`);
    expect(lines[2]).toContain(`,"S""91",'-2+3,`);
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(4);
  });

  it('when the devices CSV is filtered, then it holds what the list holds', async () => {
    const listed = (await as('auditor')(`/api/v1/devices?vaId=${vaB}&status=active&limit=1000`).expect(200)).body.items.map((d: { id: string }) => d.id);
    const rows = (await csv(`/api/v1/devices.csv?vaId=${vaB}&status=active`)).trim().split('\r\n').slice(1).map((l) => l.split(',')[0]);
    expect(rows).toEqual(listed);
    // A VA-scoped user's CSV: its VA's devices only, and another VA's refused.
    const scoped = (await csv('/api/v1/devices.csv', 'viewerB')).trim().split('\r\n').slice(1);
    expect(scoped.length).toBe((await as('viewerB')('/api/v1/devices?limit=1000').expect(200)).body.items.length);
    expect(scoped.every((l) => l.split(',')[1] === vaB)).toBe(true);
    await as('viewerB')(`/api/v1/devices.csv?vaId=${h.defaultVa}`).expect(403);
    const bad = await as('auditor')('/api/v1/devices.csv?status=gone').expect(400);
    expect(bad.body.error.message).toMatch(/status/);
  });

  it('when the licenses CSV is read, then each VA and tag carries its figures on a row per entitlement line', async () => {
    const rows = (await csv('/api/v1/licenses.csv')).trim().split('\r\n');
    expect(rows[0]).toBe('va_id,va_name,tag,display_name,status,owned,in_use,available,short,devices,line_id,line_kind,line_quantity,line_starts_at,line_ends_at,line_valid_now,line_labels');
    const dna = rows.find((r) => r.startsWith(`${h.defaultVa},`))!;
    // The tag holds a comma: quoted.
    expect(dna).toMatch(new RegExp(`^${h.defaultVa},Default,"${TAG.replace(/[.]/g, '\\.')}",DNA,shortage,2,5,0,3,2,ent_[^,]+,subscription,2,[^,]+,[^,]+,true,$`));
    expect(rows.find((r) => r.startsWith(`${vaB},`))).toMatch(/,Advantage,in_compliance,50,4,46,0,1,ent_[^,]+,perpetual,50,[^,]+,,true,$/);
    expect((await csv('/api/v1/licenses.csv', 'viewerB')).trim().split('\r\n').slice(1).every((r) => r.startsWith(`${vaB},`))).toBe(true);
  });

  it('when the events CSV is read with a filter, then it holds the events the list holds, newest first', async () => {
    const listed = (await as('auditor')('/api/v1/events?type=device.*&limit=1000').expect(200)).body.items.map((e: { id: number }) => String(e.id));
    const rows = (await csv('/api/v1/events.csv?type=device.*')).trim().split('\r\n');
    expect(rows[0]).toBe('id,at,type,actor,subject,va_id,origin,details,hash');
    expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(listed);
    expect(listed.length).toBeGreaterThan(0);
  });
});
