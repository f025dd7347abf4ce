import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';

describe('outpost cisco devices, through the real CLI', () => {
  it('when a device is added with a password file, then it is listed without it; a file others may read, or no password, is refused', async () => {
    const dir = tempDataDir();
    mkdirSync(dir, { recursive: true });
    const env = envFor(dir);
    const secret = join(dir, '..', 'sw1.pass');
    writeFileSync(secret, 'Sw1-s3cret\n');
    chmodSync(secret, 0o644);
    const loose = await cli(['cisco', 'devices', 'add', 'sw-1', '--host', '10.0.0.1', '--username', 'lic', '--password-file', secret], env);
    expect(loose.code).toBe(1);
    expect(loose.stderr).toContain(`chmod 600 ${secret}`);
    const none = await cli(['cisco', 'devices', 'add', 'sw-1', '--host', '10.0.0.1', '--username', 'lic'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('never on the command line');
    chmodSync(secret, 0o600);
    const added = await cli(['cisco', 'devices', 'add', 'sw-1', '--host', '10.0.0.1', '--username', 'lic', '--password-file', secret, '--insecure'], env);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('NOT VERIFIED (insecure)');
    const fromEnv = await cli(['cisco', 'devices', 'add', 'sw-2', '--host', '10.0.0.2', '--username', 'lic'], { ...env, OUTPOST_DEVICE_PASSWORD: 'Sw2-s3cret' });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stderr).not.toContain('unknown variable');
    const list = await cli(['cisco', 'devices', 'list'], env);
    expect(list.stdout).toMatch(/sw-1\s+10\.0\.0\.1:443\s+lic\s+insecure/);
    expect(list.stdout + (await cli(['cisco', 'devices', 'list', '--json'], env)).stdout).not.toMatch(/s3cret/);
  }, 60_000);
});
