import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';

/** A loopback port nothing listens on: taken from the system, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the outpost command, when the operator gets something wrong', () => {
  const dir = tempDataDir();
  const env = envFor(dir);

  it('then an option the collector refuses is named as typed, not as an HTTP body field', async () => {
    const r = await cli(['export', '--period', 'nov'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--period: a month as YYYY-MM, e.g. 2026-11');
    expect(r.stderr).not.toMatch(/body|invalid_body/);
  });

  it('then a refused argument or option of any command is named as the command line names it', async () => {
    const long = await cli(['va', 'create', 'x'.repeat(101)], env);
    expect(long.stderr).toMatch(/^outpost va create: NAME: .*100 characters\nusage: outpost va create NAME/);
    const status = await cli(['devices', 'list', '--status', 'gone'], env);
    expect(status.stderr).toMatch(/^outpost devices list: --status: .*"active"/);
    expect(status.stderr).not.toContain('query');
  });

  it('then a misspelled OUTPOST_ variable is warned about once, with the nearest name, and the command still runs', async () => {
    const r = await cli(['va', 'list'], { ...env, OUTPOST_HTTP_PROT: '9000' });
    expect(r.code).toBe(0);
    expect(r.stderr.match(/OUTPOST_HTTP_PROT/g)).toHaveLength(1);
    expect(r.stderr).toContain('did you mean OUTPOST_HTTP_PORT?');
    expect((await cli(['va', 'list'], env)).stderr).toBe('');
  });

  it('then a missing config file is file_not_found naming it, and a folder given as one is not_a_file', async () => {
    const missing = join(dir, '..', 'no-such.json');
    const r = await cli(['va', 'list', '--config', missing], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`there is no config file ${missing}`);
    expect(r.stderr).toContain('(file_not_found)');
    const folder = await cli(['va', 'list', '--config', join(dir, '..')], env);
    expect(folder.stderr).toContain('(not_a_file)');
  });

  it('then a bundle that is not there is file_not_found naming it, whichever command reads it', async () => {
    const missing = join(dir, '..', 'nope.opb');
    for (const args of [['bundle', 'inspect', missing], ['bundle', 'verify', missing], ['import', missing], ['enroll', 'confirm', missing]]) {
      const r = await cli(args, env);
      expect([args[0], r.code, r.stderr]).toEqual([args[0], 1, expect.stringContaining(`there is no file ${missing} (file_not_found)`)]);
    }
  });

  it('then a RUM file that is not there is file_not_found naming it with its full path', async () => {
    const missing = join(dir, '..', 'nope.xml');
    const r = await cli(['usage', 'import', missing], env);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`there is no RUM file ${missing} (file_not_found)`)]);
  });

  it('then a data folder that is a file says a folder belongs there', async () => {
    const file = join(dir, '..', 'a-file');
    writeFileSync(file, 'x');
    const r = await cli(['va', 'list'], { ...env, OUTPOST_DATA_DIR: file });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file} is a file; a folder belongs there (not_a_directory)`);
  });

  it('then simulate with no collector says none answers at the URL and how to start one', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await cli(['simulate', '--url', url, '--devices', '1', '--reports', '1'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no collector answers at ${url}`);
    expect(r.stderr).toContain('npm start');
    expect(r.stderr).toContain('(collector_not_running)');
  });
});

describe('the outpost command, with a collector running', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  let server: ServerProcess;
  beforeAll(async () => {
    server = await serve(dir, { OUTPOST_DEVICE_STALE_AFTR_DAYS: '5' });
  });
  afterAll(() => server.stop());

  it('then the collector logs a misspelled OUTPOST_ variable with the nearest name', () => {
    const warning = server.log().split('\n').find((l) => l.includes('OUTPOST_DEVICE_STALE_AFTR_DAYS'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', message: expect.stringContaining('did you mean OUTPOST_DEVICE_STALE_AFTER_DAYS?') });
  });

  it('then an outbox that became a file is named, not reported as internal', async () => {
    const outbox = join(env.OUTPOST_EXCHANGE_BUNDLE_DIR!, 'outbox');
    rmSync(outbox, { recursive: true, force: true });
    writeFileSync(outbox, '');
    try {
      for (const args of [['export'], ['enroll', '--account', 'Acme']]) {
        const r = await cli(args, env);
        expect([args[0], r.code]).toEqual([args[0], 1]);
        expect(r.stderr).not.toContain('internal');
        expect(r.stderr).toContain(`${outbox}`);
        expect(r.stderr).toContain('(not_a_directory)');
      }
    } finally {
      rmSync(outbox);
      mkdirSync(outbox);
    }
  });
});
