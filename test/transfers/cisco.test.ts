import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from '../helpers/harness.js';
import { FIXTURE_TAG, type FakeCssm, type FakeLicense } from '../helpers/fake-cssm.js';
import { cloudTransferSite } from './sites.js';

let h: Harness | undefined;
let cssm: FakeCssm | undefined;
afterEach(async () => {
  await h?.close();
  await cssm?.stop();
  h = cssm = undefined;
});

async function cloudSite(licenses: FakeLicense[], transferApplyAfterReads?: number | 'manual') {
  const site = await cloudTransferSite(licenses, transferApplyAfterReads);
  ({ h, cssm } = site);
  return site.campus;
}

const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;
const owned = async (vaId: string) =>
  (((await h!.api.get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body.tags as { tag: string; owned: number }[]).find((t) => t.tag === FIXTURE_TAG)?.owned ?? 0);
const stateOf = async () => ((await h!.api.get('/api/v1/licenses/transfers').expect(200)).body.items as { state: string; refusal: string | null }[])[0]!;
const compliance = async (vaId: string) => (await h!.api.get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body as unknown;
/** What the last positions read gave each VA for the fixture's tag. */
const positions = async (vaId: string) =>
  ((await h!.api.get('/api/v1/cisco/positions').expect(200)).body.items as { vaId: string; tag: string | null; quantity: number }[])
    .filter((p) => p.vaId === vaId && p.tag === FIXTURE_TAG)
    .reduce((s, p) => s + p.quantity, 0);
const dna = (va: string, quantity: number, inUse: number): FakeLicense => ({ va, name: 'DNA Network Stack', tag: FIXTURE_TAG, quantity, inUse, licenseType: 'TERM' });

describe("a transfer through Cisco's cloud", () => {
  it("when the collector syncs, then the transfer goes through Cisco's transfer call in chunks, and the positions read that shows it confirms it", async () => {
    const campus = await cloudSite([dna('DEFAULT', 300, 0), dna('Campus', 20, 0)]);
    expect((await sync()).status).toBe('synced');
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([300, 20]);
    await h!.api.post('/api/v1/licenses/transfers').send({ fromVaId: h!.defaultVa, toVaId: campus, tag: FIXTURE_TAG, quantity: 250 }).expect(201);
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([50, 270]);

    const r = await sync();
    expect(r.status).toBe('synced');
    const calls = cssm!.transfers();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ from: 'DEFAULT', status: 200 });
    expect(calls[0]!.licenses.map((l) => l.quantity)).toEqual([100, 100, 50]);
    expect(calls[0]!.licenses.every((l) => l.license === 'DNA Network Stack' && l.licenseType === 'TERM' && l.targetVirtualAccount === 'Campus')).toBe(true);
    expect(await stateOf()).toMatchObject({ state: 'confirmed' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([50, 270]);
    expect(h!.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);

    // Confirmed: it is not sent again.
    await sync();
    expect(cssm!.transfers()).toHaveLength(1);
  });

  it('when Cisco refuses the call (not enough available there), then the transfer is reverted with an alert that gives the reason', async () => {
    const campus = await cloudSite([dna('DEFAULT', 300, 100), dna('Campus', 20, 0)]);
    await sync();
    await h!.api.post('/api/v1/licenses/transfers').send({ fromVaId: h!.defaultVa, toVaId: campus, tag: FIXTURE_TAG, quantity: 250 }).expect(201);
    expect((await sync()).status).toBe('synced');
    expect(cssm!.transfers()[0]).toMatchObject({ status: 400 });
    const t = await stateOf();
    expect(t.state).toBe('refused');
    expect(t.refusal).toContain('Insufficient licenses available');
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([300, 20]);
    const alerts = (await h!.api.get('/api/v1/alerts?kind=transfer_refused').expect(200)).body.items as { message: string }[];
    expect(alerts.map((a) => a.message).join()).toContain('Insufficient licenses available');
  });

  it('when Cisco fails the call, then the sync says so, the transfer stays provisional in both VAs, and the next sync sends it', async () => {
    const campus = await cloudSite([dna('DEFAULT', 300, 0), dna('Campus', 20, 0)]);
    await sync();
    await h!.api.post('/api/v1/licenses/transfers').send({ fromVaId: h!.defaultVa, toVaId: campus, tag: FIXTURE_TAG, quantity: 30 }).expect(201);
    cssm!.fault({ path: '/licenses/transfer', status: 503, times: 1 });
    expect((await sync()).status).not.toBe('synced');
    expect(await stateOf()).toMatchObject({ state: 'provisional' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 50]);
    expect(cssm!.transfers()).toHaveLength(0);
    expect((await sync()).status).toBe('synced');
    expect(await stateOf()).toMatchObject({ state: 'confirmed' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 50]);
  });

  it('when the positions reads after the call do not show it yet (Cisco applies it later), then it stays provisional and laid over them, and the read that shows it confirms it without counting it twice', async () => {
    const campus = await cloudSite([dna('DEFAULT', 300, 0), dna('Campus', 20, 0)], 2);
    await sync();
    await h!.api.post('/api/v1/licenses/transfers').send({ fromVaId: h!.defaultVa, toVaId: campus, tag: FIXTURE_TAG, quantity: 30 }).expect(201);
    const laid = [await compliance(h!.defaultVa), await compliance(campus)];
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 50]);

    // The call is accepted, and the two reads that follow still show Cisco's positions without it.
    for (let read = 1; read <= 2; read++) {
      expect((await sync()).status).toBe('synced');
      expect(cssm!.transfers()).toHaveLength(1);
      expect(cssm!.pendingTransfers()).toBe(1);
      expect([await positions(h!.defaultVa), await positions(campus)]).toEqual([300, 20]);
      expect(await stateOf()).toMatchObject({ state: 'provisional' });
      expect([await compliance(h!.defaultVa), await compliance(campus)]).toEqual(laid);
    }

    expect((await sync()).status).toBe('synced');
    expect(cssm!.pendingTransfers()).toBe(0);
    expect([await positions(h!.defaultVa), await positions(campus)]).toEqual([270, 50]);
    expect(await stateOf()).toMatchObject({ state: 'confirmed' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 50]);
    expect(h!.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);
    expect(cssm!.transfers()).toHaveLength(1);
    // A later read changes nothing: the ledger is Cisco's positions.
    await sync();
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 50]);
  });

  it('when the destination gains licenses at Cisco some other way before Cisco applies the transfer, then that gain does not confirm it', async () => {
    const campus = await cloudSite([dna('DEFAULT', 300, 0), dna('Campus', 20, 0)], 'manual');
    await sync();
    await h!.api.post('/api/v1/licenses/transfers').send({ fromVaId: h!.defaultVa, toVaId: campus, tag: FIXTURE_TAG, quantity: 30 }).expect(201);
    // Campus buys 30 more at Cisco after the last read and before the call goes.
    cssm!.setLicenses([dna('DEFAULT', 300, 0), dna('Campus', 50, 0)]);

    expect((await sync()).status).toBe('synced');
    expect(cssm!.pendingTransfers()).toBe(1);
    expect(await stateOf()).toMatchObject({ state: 'provisional' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 80]);

    expect(cssm!.applyTransfers()).toBe(1);
    expect((await sync()).status).toBe('synced');
    expect(await stateOf()).toMatchObject({ state: 'confirmed' });
    expect([await owned(h!.defaultVa), await owned(campus)]).toEqual([270, 80]);
    expect(h!.count('SELECT count(*) FROM entitlements WHERE transfer_id IS NOT NULL')).toBe(0);
  });
});
