import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { FIXTURE_TAG, startFakeCssm, type FakeCssm } from '../helpers/fake-cssm.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { TAG2 } from '../helpers/harness.js';

let cssm: FakeCssm;
let env: Record<string, string>;
let config: string;

beforeAll(async () => {
  const ca = makeTestCa();
  cssm = await startFakeCssm({ ca });
  const dir = tempDataDir();
  env = envFor(dir);
  config = join(dir, '..', 'outpost.json');
  writeFileSync(config, JSON.stringify({
    exchange: { mode: 'connected', upstream: { kind: 'cisco' } },
    cisco: { cloud: { tokenUrl: cssm.tokenUrl, apiUrl: `${cssm.url}/smart-accounts-and-licensing`, clientId: cssm.clientId, domain: 'example.com', virtualAccounts: { Default: 'DEFAULT' }, caFile: ca.caFile, pollSeconds: 1 } },
  }));
  const set = await cli(['cisco', 'cloud', 'credentials', '--config', config], { ...env, OUTPOST_CSSM_CLIENT_SECRET: cssm.clientSecret });
  expect(set.stderr).toBe('');
});

afterAll(async () => {
  await cssm?.stop();
});

describe('outpost cisco reserve, on the command line', () => {
  it('when a request code and two licenses are given, then the authorization code is printed and listed', async () => {
    const r = await cli(['cisco', 'reserve', '--config', config, '--va', 'Default', '--request-code', 'CB-ZC9300:FOC1-Ab', '--license', `${FIXTURE_TAG}=3`, '--license', `${TAG2}=1`], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const made = cssm.reservations();
    expect(made).toEqual([expect.objectContaining({ kind: 'reserve', va: 'DEFAULT', reservationCode: 'CB-ZC9300:FOC1-Ab', licenses: [{ tag: FIXTURE_TAG, quantity: 3 }, { tag: TAG2, quantity: 1 }] })]);
    expect(r.stdout).toContain(made[0]!.code);
    expect(r.stdout).toContain('install by hand');
    const list = await cli(['cisco', 'reservations', '--config', config, '--json'], env);
    expect(JSON.parse(list.stdout)).toMatchObject([{ kind: 'reserve', status: 'complete', authorizationCode: made[0]!.code }]);
  });

  it('when a license is not TAG=N, or the device is unknown, then the command says so and nothing is reserved', async () => {
    const bad = await cli(['cisco', 'reserve', '--config', config, '--va', 'Default', '--request-code', 'X1', '--license', 'DNA'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--license DNA: give it as TAG=N');
    const unknown = await cli(['cisco', 'reserve', 'return', '--config', config, '--va', 'Default', '--udi', 'C9300-24P:NOSUCH', '--return-code', 'RC1'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no device with UDI C9300-24P:NOSUCH is known');
    expect(cssm.reservations()).toHaveLength(1);
  });
});
