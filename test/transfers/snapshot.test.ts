import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import type { Site } from '../helpers/exchange.js';
import { outpostTransferSite } from './sites.js';

let s: Site;
let campus: string;
let buy: (quantity: number, va?: string) => unknown;
let owned: (vaId: string) => Promise<number>;
beforeEach(async () => {
  ({ s, campus, buy, owned } = await outpostTransferSite());
});
afterEach(() => s.close());

const roundTrip = async (file: string) => (await s.importFile((await s.up.process(file)).responseFile)).body;

describe('a provisional transfer and the snapshots that arrive meanwhile', () => {
  it('when a snapshot made before the upstream saw the transfer arrives, then the transfer is laid over it, not erased', async () => {
    buy(10);
    buy(1, 'Campus');
    await roundTrip((await s.exportNow()).file); // Default's lines arrive; Campus is confirmed
    expect(await owned(s.h.defaultVa)).toBe(10);
    const early = await s.exportNow(); // written before the transfer: its answer knows nothing of it
    const t = (await s.h.api.post('/api/v1/licenses/transfers').send({ fromVaId: s.h.defaultVa, toVaId: campus, tag: TAG, quantity: 3 }).expect(201)).body;
    // The upstream's ledger moves too: both VAs' next snapshots are new versions (15 and 3 owned).
    buy(5);
    buy(2, 'Campus');
    const imported = await roundTrip(early.file);
    expect(imported.entitlements.applied).toBe(2);
    expect(await owned(s.h.defaultVa)).toBe(12);
    expect(await owned(campus)).toBe(6);
    expect((await s.h.api.get('/api/v1/licenses/transfers').expect(200)).body.items).toMatchObject([{ id: t.id, state: 'provisional' }]);
    expect(s.h.count('SELECT count(*) FROM entitlements WHERE transfer_id = ?', t.id)).toBe(1);
  });
});
