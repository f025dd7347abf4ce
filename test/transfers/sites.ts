import { DAY, startHarness, TAG, type Harness } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { startFakeCssm, type FakeCssm, type FakeLicense } from '../helpers/fake-cssm.js';
import { makeTestCa } from '../helpers/test-ca.js';

/** A site whose upstream is Cisco's cloud (the double), Default and Campus mapped to CSSM virtual accounts. */
export async function cloudTransferSite(licenses: FakeLicense[], transferApplyAfterReads?: number | 'manual'): Promise<{ h: Harness; cssm: FakeCssm; campus: string }> {
  const ca = makeTestCa();
  const cssm = await startFakeCssm({ ca, pollsBeforeComplete: 1, licenses, ...(transferApplyAfterReads !== undefined ? { transferApplyAfterReads } : {}) });
  const h = await startHarness({
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
  return { h, cssm, campus };
}

/** A collector with an Outpost upstream (the air gap's), a Campus VA beside Default, and how to buy and read licenses there. */
export async function outpostTransferSite(): Promise<{ s: Site; campus: string; buy: (quantity: number, va?: string) => unknown; owned: (vaId: string) => Promise<number> }> {
  const s = await startSite();
  const campus = (await s.h.api.post('/api/v1/virtual-accounts').send({ name: 'Campus' }).expect(201)).body.id as string;
  const buy = (quantity: number, va = 'Default') =>
    s.up.service.addEntitlement({ account: 'ACME', va, tag: TAG, displayName: 'DNA Network Stack', kind: 'subscription', quantity, startsAt: Date.now() - DAY, endsAt: Date.now() + 365 * DAY });
  const owned = async (vaId: string) =>
    (((await s.h.api.get(`/api/v1/virtual-accounts/${vaId}/compliance`).expect(200)).body.tags as { tag: string; owned: number }[]).find((t) => t.tag === TAG)?.owned ?? 0);
  return { s, campus, buy, owned };
}
