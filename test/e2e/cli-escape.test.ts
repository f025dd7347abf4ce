import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';

// ESC (clear screen, then a forged line), CR, BEL, a C1 CSI, and a right-to-left override.
const HOSTILE = 'sw1\u001b[2J\rOK all clear\u0007\u009b31m\u202eevil';
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('device-supplied text in CLI output', () => {
  it('when a hostname, serial and software version hold terminal controls, then every command prints them escaped', async () => {
    const dataDir = tempDataDir();
    const env = envFor(dataDir);
    const s = buildServices(loadConfig({ env }), { logger: createLogger('error', true) });
    const va = s.accounts.list()[0]!.id;
    s.devices.repo.insert({
      id: 'dev_hostile', va_id: va, udi_pid: 'C9300\u001b]0;pwn\u0007', udi_serial: 'SN\r1', hostname: HOSTILE, software_version: '17\u0008',
      public_key: null, pending_public_key: null, pending_since: null, status: 'active', source: 'rum',
      registered_at: Date.now(), last_seen_at: Date.now(), last_seq: null,
    });
    s.db.close();
    for (const args of [['devices', 'list'], ['devices', 'list', '--json'], ['devices', 'show', 'dev_hostile'], ['devices', 'show', 'dev_hostile', '--json']]) {
      const r = await cli(args, env);
      expect(r.code, args.join(' ')).toBe(0);
      expect(RAW.test(r.stdout), `${args.join(' ')} printed a raw control: ${JSON.stringify(r.stdout)}`).toBe(false);
      expect(r.stdout).toContain('evil');
    }
    const table = (await cli(['devices', 'list'], env)).stdout;
    expect(table).toContain('\\x1b[2J\\x0dOK all clear\\x07\\x9b31m\\u202eevil');
    expect(table.trim().split('\n')).toHaveLength(2); // the header and one row: no forged line
    const json = JSON.parse((await cli(['devices', 'show', 'dev_hostile', '--json'], env)).stdout);
    expect(json.hostname).toBe(HOSTILE); // escaped for the terminal, the same value for a program
  });
});
