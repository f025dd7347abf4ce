import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readmeBlocks } from './blocks.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The unit's settings, each key with all its values (ReadWritePaths may be given on several lines, with several paths). */
function unitSettings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (kv) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

/** The block's commands, one a line, with backslash continuations joined. */
const commands = (code: string) => code.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && !l.startsWith('#'));

describe('the README install section and the systemd unit agree', () => {
  const unit = unitSettings(readFileSync(join(ROOT, 'systemd/outpost.service'), 'utf8'));
  const block = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8')).find((b) => b.heading === 'Running it as a service')!;
  const cmds = commands(block.code);
  const user = unit.get('User')![0]!;
  const stateDirs = (unit.get('StateDirectory') ?? []).flatMap((v) => v.split(/\s+/)).map((d) => `/var/lib/${d}`);

  it('is not run by the README test, and says why', () => {
    expect(block.norun).toMatch(/root/);
  });

  it('creates every path the unit may write, owned by the service user (systemd makes the StateDirectory itself)', () => {
    const rw = unit.get('ReadWritePaths')!.flatMap((v) => v.split(/\s+/)).filter(Boolean);
    expect(rw.length).toBeGreaterThan(0);
    const made = cmds
      .filter((c) => new RegExp(`\\binstall -d\\b.*-o ${user} -g ${user}\\b`).test(c))
      .flatMap((c) => c.split(/\s+/).filter((w) => w.startsWith('/')));
    for (const p of rw) expect(stateDirs.includes(p) || made.includes(p), `${p} (ReadWritePaths)`).toBe(true);
    expect(cmds.some((c) => new RegExp(`useradd .*\\b${user}$`).test(c))).toBe(true);
  });

  it('has operators run the CLI as the service user, in the unit\'s folder, on the unit\'s data folder', () => {
    const dataDir = unit.get('Environment')!.map((e) => /^OUTPOST_DATA_DIR=(.*)$/.exec(e)?.[1]).find(Boolean)!;
    const cli = cmds.find((c) => c.includes('dist/cli/main.js'));
    expect(cli, 'a command that runs the CLI (dist/cli/main.js)').toBeDefined();
    expect(cli!).toContain(`cd ${unit.get('WorkingDirectory')![0]} `);
    expect(cli!).toContain(`sudo -u ${user} env OUTPOST_DATA_DIR=${dataDir} `);
  });
});
