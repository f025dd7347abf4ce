import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { CONSOLE_FILES, consoleDir } from '../../src/http/console-assets.js';

const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

describe('the console is served from the route table, with its own policy', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('when the console is built, then its files are exactly those the route table declares (and its page)', () => {
    const built = walk(consoleDir()).map((f) => relative(consoleDir(), f)).sort();
    expect(built).toEqual([...Object.keys(CONSOLE_FILES), 'index.html'].sort());
  });

  it('when the page is loaded, then it names only this build\'s files, under a policy with no inline script and no other host', async () => {
    const page = await h.api.get('/').expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe|https?:|data:|\*/);
    const urls = [...(page.text as string).matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBe(3);
    for (const u of urls) {
      expect(u).toMatch(/^\/console\/[0-9a-f]{16}\//);
      const asset = await h.api.get(u).expect(200);
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    // Before any user exists the caller is the host's loopback admin; the page says what kind of caller loaded it.
    expect(page.text).toContain('data-principal="loopback"');
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
  });

  it('when an asset of another build is asked for, then it is not found, naming the build to load instead', async () => {
    const res = await h.api.get('/console/0123456789abcdef/main.js').expect(404);
    expect(res.body.error.message).toContain('load / again');
  });
});
