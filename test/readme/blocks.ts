/**
 * The README's shell blocks, as a newcomer meets them: every ```sh block in order, with the
 * output its `# → ` lines promise. A block is skipped only when the line just before it is
 * `<!-- norun: REASON -->`; a norun without a reason is an error, so every skip says why.
 */
export interface ReadmeBlock {
  /** 1-based line of the opening fence, for messages. */
  line: number;
  /** The nearest heading above the block. */
  heading: string;
  code: string;
  /** Why the block is not run, or undefined when it runs. */
  norun?: string;
  /** Text the block's output must hold, in this order (`…` stands for any text on one line). */
  expect: string[];
}

const NORUN = /^<!--\s*norun\b(.*?)-->\s*$/;
export const EXPECT_PREFIX = '# → ';

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, '');
    const fence = /^(```+)(\S*)/.exec(l);
    if (!fence) continue;
    const end = lines.findIndex((x, j) => j > i && x.startsWith(fence[1]!) && x.trim() === fence[1]);
    if (end < 0) throw new Error(`README line ${i + 1}: a code block that never closes`);
    if (fence[2] === 'sh') {
      const code = lines.slice(i + 1, end).join('\n');
      let p = i - 1;
      while (p >= 0 && lines[p]!.trim() === '') p--;
      const marker = p >= 0 ? NORUN.exec(lines[p]!.trim()) : null;
      let norun: string | undefined;
      if (marker) {
        norun = marker[1]!.replace(/^\s*:/, '').trim();
        if (!/^\s*:/.test(marker[1]!) || !norun) throw new Error(`README line ${p + 1}: a norun marker must give its reason: <!-- norun: why -->`);
      }
      const expect = code
        .split('\n')
        .map((x) => x.trim())
        .filter((x) => x.startsWith(EXPECT_PREFIX))
        .map((x) => x.slice(EXPECT_PREFIX.length).trim());
      blocks.push({ line: i + 1, heading, code, norun, expect });
    }
    i = end;
  }
  return blocks;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The first expectation not found in `output`, or undefined when all are there in order.
 * Each is matched within one line; `…` matches any run of characters on that line.
 */
export function missingExpectation(output: string, expect: string[]): string | undefined {
  let from = 0;
  for (const e of expect) {
    const re = new RegExp(e.split('…').map(escape).join('[^\\n]*?'), 'g');
    re.lastIndex = from;
    const m = re.exec(output);
    if (!m) return e;
    from = m.index + m[0].length;
  }
  return undefined;
}
