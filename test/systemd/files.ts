import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const systemdFile = (name: string) => readFileSync(join(ROOT, 'systemd', name), 'utf8');

/** The services shipped, each with its sysusers and tmpfiles snippets. */
export const SERVICES = ['outpost', 'outpost-upstream'] as const;

/** A unit's settings, each key with all its values in order (a key may be given on several lines). */
export function unitSettings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (kv) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

export interface Unit {
  user: string;
  group: string;
  env: Map<string, string>;
  /** What the service may write: its StateDirectory (under /var/lib) and its ReadWritePaths. */
  writable: string[];
  workingDirectory: string;
  settings: Map<string, string[]>;
}

export function readUnit(service: string): Unit {
  const s = unitSettings(systemdFile(`${service}.service`));
  const words = (k: string) => (s.get(k) ?? []).flatMap((v) => v.split(/\s+/)).filter(Boolean);
  const env = new Map((s.get('Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
  return {
    user: s.get('User')![0]!, group: s.get('Group')![0]!, env, settings: s, workingDirectory: s.get('WorkingDirectory')![0]!,
    writable: [...new Set([...words('StateDirectory').map((d) => `/var/lib/${d}`), ...words('ReadWritePaths')])],
  };
}

export interface SysUser {
  name: string;
  home: string;
  shell: string;
}

/** sysusers.d `u` lines: name, id, "GECOS", home, shell. */
export function sysusers(text: string): SysUser[] {
  return text.split('\n').filter((l) => /^u\s/.test(l)).map((l) => {
    const m = /^u\s+(\S+)\s+(\S+)\s+"[^"]*"\s+(\S+)\s+(\S+)\s*$/.exec(l);
    if (!m) throw new Error(`not a sysusers line this test reads: ${l}`);
    return { name: m[1]!, home: m[3]!, shell: m[4]! };
  });
}

export interface TmpEntry {
  type: string;
  path: string;
  mode: number;
  user: string;
  group: string;
}

/** tmpfiles.d lines: type, path, mode, user, group (age and argument ignored). */
export function tmpfiles(text: string): TmpEntry[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const [type, path, mode, user, group] = l.split(/\s+/);
    return { type: type!, path: path!, mode: parseInt(mode!, 8), user: user!, group: group! };
  });
}
