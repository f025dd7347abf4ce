import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, TAG } from '../helpers/harness.js';
import type { Site } from '../helpers/exchange.js';
import { outpostTransferSite } from './sites.js';
import { readManifest } from '../../src/exchange/read.js';

let s: Site;
let campus: string;
let buy: (quantity: number, va?: string) => unknown;
let owned: (vaId: string) => Promise<number>;
beforeEach(async () => {
  ({ s, campus, buy, owned } = await outpostTransferSite());
});
afterEach(() => s.close());

const upstreamOwned = (vaId: string) => (s.up.service.db.prepare('SELECT coalesce(sum(quantity), 0) FROM entitlements WHERE va_id = ? AND tag = ?').pluck().get(vaId, TAG) as number);
const transfer = async (quantity: number) =>
  (await s.h.api.post('/api/v1/licenses/transfers').send({ fromVaId: s.h.defaultVa, toVaId: campus, tag: TAG, quantity }).expect(201)).body as { id: string };
const stateOf = async (id: string) => ((await s.h.api.get('/api/v1/licenses/transfers').expect(200)).body.items as { id: string; state: string; refusal: string | null }[]).find((t) => t.id === id)!;
const manifestOf = async (file: string) => (await readManifest(file)).manifest;

describe('a transfer through the reference upstream, disconnected', () => {
  it('when the usage bundle carries it, then the upstream applies it to its ledger and the response confirms it', async () => {
    buy(10);
    buy(1, 'Campus');
    const first = await s.exportNow();
    await s.importFile((await s.up.process(first.file)).responseFile);
    const t = await transfer(4);

    const exp = await s.exportNow();
    const m = await manifestOf(exp.file);
    expect(m.formatVersion).toBe(2);
    expect(m.payloads.map((p) => p.name)).toContain('transfers.ndjson.gz');
    const processed = await s.up.process(exp.file);
    expect(upstreamOwned(s.h.defaultVa)).toBe(6);
    expect(upstreamOwned(campus)).toBe(5);
    expect((await manifestOf(processed.responseFile)).formatVersion).toBe(2);
    const imp = await s.importFile(processed.responseFile);
    expect(imp.body).toMatchObject({ status: 'applied', transfers: { confirmed: 1, refused: 0 } });

    expect(await stateOf(t.id)).toMatchObject({ state: 'confirmed' });
    expect(await owned(s.h.defaultVa)).toBe(6);
    expect(await owned(campus)).toBe(5);
    // The upstream's snapshot now holds the moved lines: nothing is laid over it any more.
    expect(s.h.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);
    const types = ((await s.h.api.get('/api/v1/events?type=license.*').expect(200)).body.items as { type: string }[]).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['license.transfer_requested', 'license.transfer_confirmed']));

    // Confirmed transfers travel no more; and the same bundle processed again moves nothing twice.
    expect((await manifestOf((await s.exportNow()).file)).formatVersion).toBe(1);
    await s.up.process(exp.file, true);
    expect(upstreamOwned(s.h.defaultVa)).toBe(6);
  });

  it('when the upstream has not enough available, then it refuses with the reason, and the collector reverts the transfer with an alert that says why', async () => {
    // Lines the collector holds that the upstream never sold: the upstream has none to move.
    s.h.services.licenses.addLine({ vaId: s.h.defaultVa, tag: TAG, displayName: 'DNA Network Stack', kind: 'perpetual', quantity: 8, startsAt: Date.now() - DAY, endsAt: null }, 'test');
    await s.importFile((await s.up.process((await s.exportNow()).file)).responseFile); // Campus confirmed upstream
    const t = await transfer(5);
    expect(await owned(campus)).toBe(5);
    const imp = await s.importFile((await s.up.process((await s.exportNow()).file)).responseFile);
    expect(imp.body.transfers).toEqual({ confirmed: 0, refused: 1 });

    const after = await stateOf(t.id);
    expect(after.state).toBe('refused');
    expect(after.refusal).toContain('not enough available upstream');
    expect(await owned(s.h.defaultVa)).toBe(8);
    expect(await owned(campus)).toBe(0);
    expect(s.h.count('SELECT coalesce(sum(quantity), 0) FROM entitlements WHERE tag = ?', TAG)).toBe(8);
    const alerts = (await s.h.api.get('/api/v1/alerts?kind=transfer_refused').expect(200)).body.items as { message: string }[];
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.message).toContain('not enough available upstream');
    expect(alerts[0]!.message).toContain('reverted');
    const types = ((await s.h.api.get('/api/v1/events?type=license.*').expect(200)).body.items as { type: string }[]).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['license.transfer_refused', 'license.transfer_reverted']));
  });
});

describe('the exchange format, version 2 beside version 1', () => {
  it('when a collector has no transfer (as one older than transfers), then its bundle is version 1 and the upstream reads it and answers in version 1', async () => {
    buy(3);
    const exp = await s.exportNow();
    const m = await manifestOf(exp.file);
    expect(m.formatVersion).toBe(1);
    expect(m.payloads.map((p) => p.name)).not.toContain('transfers.ndjson.gz');
    const processed = await s.up.process(exp.file);
    const r = await manifestOf(processed.responseFile);
    expect(r.formatVersion).toBe(1);
    expect(r.payloads.map((p) => p.name)).not.toContain('transfer-outcomes.ndjson.gz');
    expect((await s.importFile(processed.responseFile)).body).toMatchObject({ status: 'applied', entitlements: { applied: 1 } });
  });

  it('when a response in version 1 (from an upstream older than transfers) arrives while a transfer is provisional, then it is read, and the transfer stays provisional over its snapshot', async () => {
    buy(10);
    await s.importFile((await s.up.process((await s.exportNow()).file)).responseFile);
    const v1 = await s.exportNow(); // no transfer yet: version 1, as an older upstream reads
    const t = await transfer(2);
    buy(1);
    const processed = await s.up.process(v1.file);
    expect((await manifestOf(processed.responseFile)).formatVersion).toBe(1);
    const imp = await s.importFile(processed.responseFile);
    expect(imp.body).toMatchObject({ status: 'applied', entitlements: { applied: 1 }, transfers: { confirmed: 0, refused: 0 } });
    expect(await stateOf(t.id)).toMatchObject({ state: 'provisional' });
    expect(await owned(s.h.defaultVa)).toBe(9);
    expect(await owned(campus)).toBe(2);
  });
});
