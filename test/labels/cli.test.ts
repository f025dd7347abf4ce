import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { seedDevices } from './seed.js';

describe('labels from the command line', () => {
  it('when an operator labels devices by a product id prefix, then devices list --label filters by it, and bad input is refused by name', async () => {
    const dataDir = tempDataDir();
    const env = envFor(dataDir);
    const s = buildServices(loadConfig({ env }), { logger: createLogger('error', true) });
    const va = s.accounts.list()[0]!.id;
    const other = s.accounts.createVa({ name: 'Branch' }, 'test').id;
    const core = seedDevices(s, va, 'C9300-24T', 2, 'CLI');
    seedDevices(s, va, 'C9200-24T', 1, 'CLI');
    seedDevices(s, other, 'C9300-48P', 1, 'CLI');
    s.db.close();
    const ok = async (...args: string[]) => {
      const r = await cli(args, env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };

    expect(await ok('label', 'create', 'Core', '--colour', '#1a7f37', '--description', 'Core switches')).toContain('label Core created (#1a7f37)');
    const bad = await cli(['label', 'create', 'Edge', '--colour', 'green'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/colour: a colour is #rrggbb/);
    expect(await ok('label', 'attach', 'core', '--va', 'Default', '--pid', 'C9300-*')).toContain('Core: attached to 2 devices');
    const noTarget = await cli(['label', 'attach', 'Core'], env);
    expect(noTarget.code).not.toBe(0);
    expect(noTarget.stderr).toMatch(/name device ids, or filter/);

    const listed = JSON.parse(await ok('devices', 'list', '--label', 'Core', '--json'));
    expect(listed.items.map((d: { id: string }) => d.id).sort()).toEqual([...core].sort());
    expect(listed.items[0].labels).toEqual([{ name: 'Core', colour: '#1a7f37' }]);
    const text = await ok('devices', 'list', '--label', 'Core');
    expect(text.trim().split('\n')).toHaveLength(3);
    expect(text).toMatch(/LABELS/);
    expect(text).toMatch(/C9300-24T:CLI\d+ .* Core\n/);
    const unknown = await cli(['devices', 'list', '--label', 'Nope'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no label named Nope/);

    expect(await ok('label', 'list')).toMatch(/Core\s+#1a7f37\s+2\s+0/);
    expect(await ok('label', 'detach', 'Core', core[0]!)).toContain('Core: detached from 1 device');
    expect(await ok('label', 'delete', 'Core')).toContain('label Core deleted (detached from 1 devices and 0 entitlement lines)');
  });
});
