import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readUnit, ROOT, SERVICES, systemdFile, sysusers, tmpfiles } from './files.js';

const MAX_EXPOSURE = 2.0;
const work = mkdtempSync(join(tmpdir(), 'outpost-units-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): CI installs it (.ci/run installs the systemd package)`);
  return { status: r.status, out: r.stdout + r.stderr };
}

/**
 * The unit as `systemd-analyze verify` can judge it on a machine where Outpost is not installed:
 * verify refuses an ExecStart whose binary is missing ("Command /usr/bin/node is not
 * executable"), and node lives elsewhere on many machines (nvm, a CI's toolchain). The copy
 * points ExecStart at the node running this test and changes nothing else; it keeps the unit's
 * file name, from which verify takes the unit's name.
 */
function verifiable(service: string): string {
  const dir = join(work, service);
  mkdirSync(dir, { recursive: true });
  const text = systemdFile(`${service}.service`);
  const binary = /^ExecStart=(\S+)/m.exec(text)![1]!;
  expect(binary).toBe('/usr/bin/node');
  const file = join(dir, `${service}.service`);
  writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
  return file;
}

describe.each(SERVICES)('the unit %s.service', (service) => {
  const unit = readUnit(service);

  it('passes systemd-analyze verify without a warning', () => {
    const r = run('systemd-analyze', ['verify', verifiable(service)]);
    expect(r.out.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it(`is rated ${MAX_EXPOSURE} or lower by systemd-analyze security --offline=true`, () => {
    const r = run('systemd-analyze', ['security', '--offline=true', join(ROOT, 'systemd', `${service}.service`)]);
    expect(r.status).toBe(0);
    const score = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.out);
    expect(score, r.out).not.toBeNull();
    expect(Number(score![1])).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('keeps the hardening that score stands on, and leaves MemoryDenyWriteExecute off for V8', () => {
    const one = (k: string) => unit.settings.get(k)?.join(' ');
    expect(one('ProtectSystem')).toBe('strict');
    for (const k of ['PrivateTmp', 'NoNewPrivileges', 'PrivateDevices', 'ProtectHome', 'PrivateMounts', 'RestrictNamespaces', 'LockPersonality']) expect(one(k), k).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('RestrictAddressFamilies')!.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(unit.settings.get('SystemCallFilter')).toContain('@system-service');
    expect(one('UMask')).toBe('0077');
    expect(one('MemoryDenyWriteExecute')).toBeUndefined();
  });

  it('runs as the user its sysusers snippet makes, whose home is its data folder', () => {
    const users = sysusers(systemdFile(`${service}.sysusers`));
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ name: unit.user, shell: '/usr/sbin/nologin' });
    expect(unit.group).toBe(unit.user); // sysusers makes a group of the user's name
    expect(unit.writable).toContain(users[0]!.home);
  });

  it('may write only folders its tmpfiles snippet makes for it alone (0700), and reads settings root keeps', () => {
    const entries = tmpfiles(systemdFile(`${service}.tmpfiles`));
    for (const path of unit.writable) {
      expect(entries.find((e) => e.path === path), `${path} (ReadWritePaths or StateDirectory)`).toMatchObject({ type: 'd', mode: 0o700, user: unit.user, group: unit.user });
    }
    const config = unit.env.get('OUTPOST_CONFIG');
    expect(config).toBe(`/etc/${service}/config.json`);
    expect(entries.find((e) => e.path === config)).toMatchObject({ type: 'f', mode: 0o640, user: 'root', group: unit.user });
    expect(entries.find((e) => e.path === `/etc/${service}`)).toMatchObject({ type: 'd', mode: 0o750, user: 'root', group: unit.user });
    expect(entries.find((e) => e.path === `/etc/${service}/tls`)).toMatchObject({ type: 'd', mode: 0o750, user: 'root', group: unit.user });
    // Nothing the snippet makes is open to others.
    for (const e of entries) expect(e.mode & 0o007, e.path).toBe(0);
  });

  it('has snippets systemd-sysusers and systemd-tmpfiles apply to an empty root as the unit needs them', () => {
    const root = join(work, `${service}-root`);
    mkdirSync(join(root, 'etc'), { recursive: true });
    // Absolute paths: with --root, a relative one is looked up inside the root.
    const users = run('systemd-sysusers', [`--root=${root}`, join(ROOT, 'systemd', `${service}.sysusers`)]);
    expect(users.status, users.out).toBe(0);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const entry = passwd.split('\n').find((l) => l.startsWith(`${unit.user}:`))!.split(':');
    const made = run('systemd-tmpfiles', ['--create', `--root=${root}`, join(ROOT, 'systemd', `${service}.tmpfiles`)]);
    expect(made.out).not.toMatch(/parse|unknown|invalid/i);
    // Owners are set only by root, as CI and a real install run it; elsewhere the paths and modes are still checked.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) expect(made.status, made.out).toBe(0);
    for (const path of unit.writable) {
      const st = statSync(join(root, path));
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
      if (asRoot) expect(String(st.uid)).toBe(entry[2]);
    }
    expect(readFileSync(join(root, unit.env.get('OUTPOST_CONFIG')!), 'utf8')).toBe('{}');
    if (asRoot) expect(String(statSync(join(root, unit.env.get('OUTPOST_CONFIG')!)).gid)).toBe(entry[3]);
  });
});

describe('the collector unit', () => {
  const unit = readUnit('outpost');
  it('stays Type=notify with NotifyAccess=all (the readiness comes from a systemd-notify child) and writes its data folder', () => {
    expect(unit.settings.get('Type')).toEqual(['notify']);
    expect(unit.settings.get('NotifyAccess')).toEqual(['all']);
    expect(unit.writable).toContain(unit.env.get('OUTPOST_DATA_DIR'));
  });
});
