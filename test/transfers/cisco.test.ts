import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startFakeCssm, FIXTURE_TAG, type FakeCssm, type FakeLicense } from '../helpers/fake-cssm.js';
import { makeTestCa } from '../helpers/test-ca.js';

let h: Harness | undefined;
let cssm: FakeCssm | undefined;
afterEach(async () => {
  await h?.close();
  await cssm?.stop();
  h = cssm = undefined;
});

/** A site whose upstream is Cisco's cloud (the double), Default and Campus mapped to CSSM virtual accounts. */
async function cloudSite(licenses: FakeLicense[]) {
  const ca = makeTestCa();
  cssm = await startFakeCssm({ ca, pollsBeforeComplete: 1, licenses });
  h = await startHarness({
    config: {
      exchange: { mode: 'connected', upstream: { kind: 'cisco' }, retry: { attempts: 1, baseSeconds: 1, maxSeconds: 1 } },
      cisco: {
        caFile: ca.caFile, timeoutSeconds: 3, retries: 0,
        cloud: {
          tokenUrl: cssm.tokenUrl, apiUrl: `${cssm.url}/smart-accounts-and-licensing`, clientId: cssm.clientId, domain: cssm.domain,
          virtualAccounts: { Default: 'DEFAULT', Campus: 'Campus' }, caFile: ca.caFile, pollSeconds: 1, maxPollMinutes: 1, timeoutSeconds: 5,
        },
      },
    },
  });
  await h.api.post('/api/v1/cisco/cloud/credentials').send({ clientSecret: cssm.clientSecret }).expect(200);
  const campus = (await h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body.id as string;
  return campus;
}

const sync = async () => (await h!.api.post('/api/v1/exchange/sync').send({ wait: true }).expect(202)).body.result;
const owned = async (vaId: string) =>
  (((await h!.api.get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body.tags as { tag: string; owned: number }[]).find((t) => t.tag === FIXTURE_TAG)?.owned ?? 0);
const stateOf = async () => ((await h!.api.get('/api/v1/licenses/transfers').expect(200)).body.items as { state: string; refusal: string | null }[])[0]!;
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
});
