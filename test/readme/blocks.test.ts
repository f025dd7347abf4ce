import { describe, expect, it } from 'vitest';
import { missingExpectation, readmeBlocks } from './blocks.js';

const md = (...parts: string[]) => parts.join('\n');

describe('reading the README blocks', () => {
  it('takes sh blocks in order, with their heading and expected lines, and leaves other blocks', () => {
    const blocks = readmeBlocks(
      md('# A', '```sh', 'echo one', '# → one', '```', '```', 'not shell', '```', '## B', '```sh', 'echo two', '```'),
    );
    expect(blocks.map((b) => [b.heading, b.code, b.expect])).toEqual([
      ['A', 'echo one\n# → one', ['one']],
      ['B', 'echo two', []],
    ]);
  });

  it('skips a block marked norun with its reason, and refuses a norun without one', () => {
    const [b] = readmeBlocks(md('<!-- norun: needs root and systemd -->', '', '```sh', 'sudo x', '```'));
    expect(b!.norun).toBe('needs root and systemd');
    expect(() => readmeBlocks(md('<!-- norun -->', '```sh', 'x', '```'))).toThrow(/must give its reason/);
    expect(() => readmeBlocks(md('<!-- norun: -->', '```sh', 'x', '```'))).toThrow(/must give its reason/);
  });

  it('matches expected lines in order, … standing for any text on one line', () => {
    const out = 'usage bundle 1: /tmp/x/outbox/usage-2026-11-seq000001.opb (8704 bytes)\nok\n';
    expect(missingExpectation(out, ['usage bundle 1: /…/outbox/usage-….opb', 'ok'])).toBeUndefined();
    expect(missingExpectation(out, ['ok', 'usage bundle'])).toBe('usage bundle');
    expect(missingExpectation(out, ['bundle 1…ok'])).toBe('bundle 1…ok');
  });
});
