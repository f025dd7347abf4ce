import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { recordSecret } from '../helpers/secrets.js';

describe('notify sink change from the command line', () => {
  it('when an admin changes a sink, then only what was named changes; a bad value is refused naming the option; a webhook key made is printed once', async () => {
    const env = envFor(tempDataDir());
    const ok = async (...args: string[]) => {
      const r = await cli(args, env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const syslog = JSON.parse(await ok('notify', 'sink', 'add', '--name', 'siem', '--syslog', '127.0.0.1:6514', '--severities', 'warning,critical', '--json'));
    const changed = JSON.parse(await ok('notify', 'sink', 'change', syslog.id, '--severities', 'critical', '--kinds', 'shortage', '--tcp', '--disable', '--json'));
    expect(changed).toMatchObject({ enabled: false, syslog: { host: '127.0.0.1', port: 6514, transport: 'tcp' }, filter: { severities: ['critical'], vaIds: null, kinds: ['shortage'] } });
    expect(await ok('notify', 'sink', 'change', syslog.id, '--enable', '--all-kinds', '--va', 'Default')).toMatch(/\(syslog, enabled\) changed: severities critical, VAs va_\S+, kinds all/);

    const bad = await cli(['notify', 'sink', 'change', syslog.id, '--severities', 'loud'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^outpost notify sink change: --severities: Invalid option/);
    const both = await cli(['notify', 'sink', 'change', syslog.id, '--enable', '--disable'], env);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/give --enable or --disable, not both/);

    const hook = await ok('notify', 'sink', 'add', '--name', 'chat', '--webhook', 'http://127.0.0.1:9/outpost');
    const made = /webhook secret \(shown once; [^)]*\): (\S+)/.exec(hook)?.[1];
    expect(made).toMatch(/^[A-Za-z0-9_-]{43}$/);
    recordSecret('webhook secret', made);
    const id = /added: (\S+)/.exec(hook)![1]!;
    const rotated = /webhook secret \(shown once; [^)]*\): (\S+)/.exec(await ok('notify', 'sink', 'change', id, '--new-secret'))?.[1];
    expect(rotated).toMatch(/^[A-Za-z0-9_-]{43}$/);
    recordSecret('webhook secret', rotated);
    expect(rotated).not.toBe(made);
    expect(await ok('notify', 'sink', 'list')).toMatch(/siem\s+syslog\s+tcp:\/\/127\.0\.0\.1:6514\s+critical\s+va_\S+\s+all\s+no\s+yes/);
  }, 60_000);
});
