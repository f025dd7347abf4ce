import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, envName } from '../../src/config/load.js';
import { tempDir } from '../helpers/temp.js';

describe('configuration', () => {
  it('when nothing is set, then the defaults from config/ apply', () => {
    const c = loadConfig({ env: {} });
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8182 });
    expect(c.device.signatureWindowSeconds).toBe(300);
    expect(c.device.staleAfterDays).toBe(90);
    expect(c.dataDir).toMatch(/data$/);
  });

  it('when a file and OUTPOST_* variables are given, then the variables win over the file', () => {
    const dir = tempDir('cfg');
    const file = join(dir, 'outpost.json');
    writeFileSync(file, JSON.stringify({ http: { port: 9000 }, device: { staleAfterDays: 30 } }));
    const c = loadConfig({ env: { OUTPOST_CONFIG: file, OUTPOST_HTTP_PORT: '9100' } });
    expect(c.http.port).toBe(9100);
    expect(c.device.staleAfterDays).toBe(30);
    expect(envName(['device', 'signatureWindowSeconds'])).toBe('OUTPOST_DEVICE_SIGNATURE_WINDOW_SECONDS');
  });

  it('when a value is bad, then start-up stops naming the key and what was expected', () => {
    expect(() => loadConfig({ env: { OUTPOST_HTTP_PORT: 'eighty' } })).toThrow(/http\.port \(OUTPOST_HTTP_PORT\): .*number/);
    expect(() => loadConfig({ env: { OUTPOST_ALERTS_EVALUATE_CRON: 'often' } })).toThrow(/alerts\.evaluateCron.*cron/);
    expect(() => loadConfig({ env: { OUTPOST_DEVICE_STALE_AFTER_DAYS: '-1' } })).toThrow(/device\.staleAfterDays/);
  });

  it('when a config file has an unknown key or is not JSON, then it is named', () => {
    const dir = tempDir('cfg');
    const typo = join(dir, 'typo.json');
    writeFileSync(typo, JSON.stringify({ htp: { port: 1 } }));
    expect(() => loadConfig({ env: {}, file: typo })).toThrow(/htp/);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "http": ');
    expect(() => loadConfig({ env: {}, file: broken })).toThrow(/broken\.json is not valid JSON/);
  });
});
