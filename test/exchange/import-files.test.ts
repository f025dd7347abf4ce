import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSite, type Site } from '../helpers/exchange.js';

let s: Site;
beforeAll(async () => {
  s = await startSite();
});
afterAll(() => s.close());

describe('importing a file that is not a readable bundle', () => {
  it('when the file does not exist, then 404 file_not_found names it (never "internal")', async () => {
    const file = join(s.h.dir, 'nowhere', 'response.opb');
    const r = await s.importFile(file);
    expect([r.status, r.body.error.code]).toEqual([404, 'file_not_found']);
    expect(r.body.error.message).toContain(file);
  });

  it('when the path is a FIFO or a directory, then it is refused without being opened (a FIFO would block)', async () => {
    const fifo = join(s.h.dir, 'pipe.opb');
    execFileSync('mkfifo', [fifo]);
    const dir = join(s.h.dir, 'folder.opb');
    mkdirSync(dir);
    for (const [file, what] of [[fifo, 'a FIFO'], [dir, 'a directory']] as const) {
      const r = await s.importFile(file);
      expect([r.status, r.body.error.code], file).toEqual([400, 'not_a_file']);
      expect(r.body.error.message).toContain(what);
    }
  });
});
