import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';

// `outpost restore` checks a whole backup before it changes anything, which takes a while on a
// large store: the real command says which step runs, on stderr, and stdout stays the result.
describe('outpost restore, as an operator runs it', () => {
  it('then it prints a plain line for each step on stderr, stdout is one JSON document, and --quiet prints no step', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    const file = join(tempDir('restore-cli'), 'b.db');
    const made = await cli(['backup', file, '--quiet', '--json'], env, 60_000); // no collector runs: the command opens the store itself
    expect(made.code, made.stderr).toBe(0);

    const r = await cli(['restore', file, '--json'], env, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ restoredFrom: file, epoch: 1 });
    const lines = r.stderr.trim().split('\n');
    expect(lines.map((l) => /^restore (?:([a-z ]+): )?(\d)\/5 steps/.exec(l)?.slice(1, 3).join(' '))).toEqual([
      'check 0', 'copy 1', 'migrate 2', 'carry over 3', 'put in place 4', 'done 5',
    ]);
    expect(r.stderr).not.toContain('\x1b');

    const quiet = await cli(['restore', file, '--quiet', '--json'], env, 60_000);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(JSON.parse(quiet.stdout)).toMatchObject({ epoch: 2 });
  }, 120_000);
});
