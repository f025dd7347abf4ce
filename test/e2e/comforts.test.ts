import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { CLI, cli, envFor, tempDataDir } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { TAG } from '../helpers/harness.js';

// Tests here run a dozen CLI processes each, one after another: about a second apiece on an idle
// two-core machine, several when it is loaded; the default 30 s bound is for one or two.
vi.setConfig({ testTimeout: 90_000 });

/** Runs the real command with its stdout redirected to a file, as `outpost ... > file` does. */
function cliToFile(args: string[], env: Record<string, string>, file: string): Promise<{ code: number | null; stderr: string }> {
  const fd = openSync(file, 'w');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', fd, 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => {
      closeSync(fd);
      resolve({ code, stderr });
    });
  });
}

const sec = Math.floor(Date.now() / 1000);
const el = (serial: string, end: number, count: number) =>
  rumElement({ pid: 'C9300-48P', serial, reportId: end, tag: TAG, measurements: [{ start: end - 3600, end, count }] });

describe('the outpost command, for an operator', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  const work = tempDir('comforts');
  const run = async (...args: string[]) => {
    const r = await cli(args, env);
    expect(r.code, `outpost ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };

  it('when a RUM file with a BOM, CRLF and non-ASCII is imported, then `reports show` gives its report back byte for byte, and lists name the VA', async () => {
    await run('va', 'create', 'Campus');
    const element = el('FOCSHOW', sec - 3600, 2).replace('WLC_9500C', 'WLC «Zürich» 東京 🚀').replace(/\n/g, '\r\n');
    const file = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<?xml version="1.0"?>\r\n${smartLicense(element)}`)]);
    writeFileSync(join(work, 'campus.xml'), file);
    await run('usage', 'import', join(work, 'campus.xml'), '--va', 'Campus');
    const va = JSON.parse(await run('va', 'list', '--json')).find((v: { name: string }) => v.name === 'Campus');

    const devices = await run('devices', 'list');
    expect(devices).toMatch(/C9300-48P:FOCSHOW\s+-?\s*Campus\s+active/);
    expect(devices).not.toContain(va.id);
    expect(JSON.parse(await run('devices', 'list', '--json')).items[0].vaId).toBe(va.id); // --json keeps ids
    const deviceId = JSON.parse(await run('devices', 'list', '--json')).items[0].id;

    expect(await run('reports', 'list', deviceId)).toContain(`C9300-48P:FOCSHOW:${sec - 3600}`);
    const out = join(work, 'shown.xml');
    const shown = await cliToFile(['reports', 'show', deviceId, `C9300-48P:FOCSHOW:${sec - 3600}`], env, out);
    expect(shown.code, shown.stderr).toBe(0);
    expect(readFileSync(out).equals(Buffer.from(element, 'utf8'))).toBe(true);
    expect(file.includes(readFileSync(out))).toBe(true);

    const missing = await cli(['reports', 'show', deviceId, 'nope'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`outpost reports list ${deviceId}`);
  });

  it('when a shortage is acknowledged, then `alerts` hides it with a word saying so, shows it with --acknowledged, and the events name the VA', async () => {
    const open = JSON.parse(await run('alerts', '--json'));
    const shortage = open.find((a: { kind: string }) => a.kind === 'shortage');
    expect(shortage).toBeDefined();
    const listed = await run('alerts');
    expect(listed).toMatch(new RegExp(`${shortage.id}\\s+critical\\s+shortage\\s+Campus`));

    const noReason = await cli(['alerts', 'ack', String(shortage.id)], env);
    expect([noReason.code, noReason.stderr]).toEqual([1, expect.stringContaining('--reason')]);
    expect(await run('alerts', 'ack', String(shortage.id), '--reason', 'PO 4711 on its way')).toMatch(/acknowledged by cli:\S+ \(self-reported\): PO 4711 on its way/);
    const after = await run('alerts');
    expect(after).not.toMatch(/critical\s+shortage/);
    expect(after).toContain('1 acknowledged alert(s) hidden: --acknowledged shows them');
    expect(await run('alerts', '--acknowledged')).toMatch(/shortage\s+Campus.*by cli:\S+ \(self-reported\): PO 4711 on its way/);
    expect(await run('events', '--type', 'alert.*')).toMatch(/alert\.acknowledged\s+cli:\S+ \(self-reported\)\s+\d+\s+Campus/);
  });

  it('when a RUM file ends past the stale age, or names devices of another VA, then the import says so', async () => {
    const old = sec - 200 * 86_400;
    writeFileSync(join(work, 'old.xml'), smartLicense(el('FOCOLD', old, 3), el('FOCSHOW', sec - 60, 2)));
    const out = await run('usage', 'import', join(work, 'old.xml'));
    expect(out).toContain('2 accepted');
    expect(out).toContain('1 device(s) stale at once: their latest report ended more than 90 days ago (device.staleAfterDays)');
    expect(out).toContain('C9300-48P:FOCOLD');
    expect(out).toContain('1 device(s) stayed in the VA they already belong to, not Default');
    expect(out).toMatch(/C9300-48P:FOCSHOW \(dev_\w+\) in Campus/);
    expect(await run('compliance', 'verify')).toContain('no drift');
  });

  it('when tokens are listed, then their VA is named', async () => {
    await run('token', 'create', '--va', 'Campus', '--description', 'lab switches');
    expect(await run('token', 'list')).toMatch(/Campus\s+active.*lab switches/);
  });
});
