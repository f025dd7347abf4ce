/**
 * A deliberately small XML scanner for RUM files: an optional XML declaration, comments,
 * one optional <smartLicense> wrapper, and <RUMReport> elements holding CDATA (or plain text
 * with the five predefined entities). Anything else, and any DTD or entity declaration, is
 * refused: no general XML parser means no external entities and no entity expansion attacks.
 */
export interface ScannedElement {
  index: number; // 1-based position among RUMReport elements
  line: number;
  column: number;
  raw: string; // the element's original text, from "<RUMReport" to "</RUMReport>"
  content: string; // the JSON text inside
}

export interface ScanProblem {
  index: number | null;
  line: number;
  column: number;
  reason: string;
}

export interface ScanResult {
  elements: ScannedElement[];
  problems: ScanProblem[];
}

export type ScanStep = { element: ScannedElement } | { problem: ScanProblem };

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const DTD = /<!DOCTYPE|<!ENTITY/i;
const DTD_REASON = 'DTDs and entity declarations are not accepted in RUM files';

/** All at once: for small inputs and tests. The importer walks `scanRumSteps` in slices. */
export function scanRum(text: string): ScanResult {
  const out: ScanResult = { elements: [], problems: [] };
  for (const step of scanRumSteps(text)) 'element' in step ? out.elements.push(step.element) : out.problems.push(step.problem);
  return out;
}

/**
 * Scans the file one element at a time, in one pass: each step costs about the length of its
 * element, so a caller can stop between steps to let other work run. Problems with no element
 * index are fatal (the file's structure is broken) and end the scan.
 */
export function* scanRumSteps(text: string): Generator<ScanStep> {
  let pos = 0;
  let index = 0;
  let wrapperOpen = false;
  let wrapperSeen = false;

  // Line and column by a cursor that only moves forward (elements and problems come in file
  // order), so finding them costs one pass over the file, not one pass per element.
  let line = 1;
  let lineStart = 0;
  let cursor = 0;
  let nextNewline = text.indexOf('\n');
  const where = (at: number) => {
    if (at < cursor) (line = 1), (lineStart = 0), (nextNewline = text.indexOf('\n')); // out of order: recount
    while (nextNewline !== -1 && nextNewline < at) {
      line++;
      lineStart = nextNewline + 1;
      nextNewline = text.indexOf('\n', lineStart);
    }
    cursor = at;
    return { line, column: at - lineStart + 1 };
  };
  const problem = (at: number, reason: string, idx: number | null = null): ScanStep => ({ problem: { index: idx, ...where(at), reason } });
  const dtdIn = (from: number, to: number): ScanStep | undefined => {
    const found = text.slice(from, to).search(DTD);
    return found === -1 ? undefined : problem(from + found, DTD_REASON);
  };
  const skipWs = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };

  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  skipWs();
  if (text.startsWith('<?xml', pos)) {
    const end = text.indexOf('?>', pos);
    if (end === -1) return yield problem(pos, 'unterminated XML declaration');
    const dtd = dtdIn(pos, end);
    if (dtd) return yield dtd;
    pos = end + 2;
  }
  for (;;) {
    skipWs();
    if (pos >= text.length) break;
    const start = pos;
    if (DTD.test(text.slice(pos, pos + 9))) return yield problem(start, DTD_REASON);
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end === -1) return yield problem(start, 'unterminated comment');
      const dtd = dtdIn(pos, end);
      if (dtd) return yield dtd;
      pos = end + 3;
      continue;
    }
    const open = /^<smartLicense(\s[^<>]*)?>/.exec(text.slice(pos, pos + 200));
    if (open) {
      if (wrapperSeen) return yield problem(start, 'a file holds at most one <smartLicense> element');
      wrapperOpen = wrapperSeen = true;
      pos += open[0].length;
      continue;
    }
    if (text.startsWith('</smartLicense>', pos)) {
      if (!wrapperOpen) return yield problem(start, '</smartLicense> without its opening tag');
      wrapperOpen = false;
      pos += '</smartLicense>'.length;
      continue;
    }
    const rum = /^<RUMReport\s*>/.exec(text.slice(pos, pos + 30));
    if (!rum) return yield problem(start, `unexpected content ${JSON.stringify(text.slice(pos, pos + 20))}; expected <RUMReport>`);
    index++;
    const close = text.indexOf('</RUMReport>', pos);
    if (close === -1) return yield problem(start, 'unterminated <RUMReport> element', index);
    const inner = text.slice(pos + rum[0].length, close);
    pos = close + '</RUMReport>'.length;
    // Outside CDATA a declaration is markup, and refused outright, as everywhere else.
    if (!inner.trimStart().startsWith('<![CDATA[') && DTD.test(inner)) return yield problem(start + rum[0].length + inner.search(DTD), DTD_REASON);
    const content = innerText(inner);
    if (typeof content !== 'string') yield problem(start, content.reason, index);
    else yield { element: { index, ...where(start), raw: text.slice(start, pos), content } };
  }
  if (wrapperOpen) yield problem(text.length, '<smartLicense> is not closed');
}

/** The element's text: one CDATA section, or plain text with the predefined entities only. */
function innerText(inner: string): string | { reason: string } {
  const t = inner.trim();
  if (t.startsWith('<![CDATA[')) {
    const end = t.indexOf(']]>');
    if (end === -1) return { reason: 'unterminated CDATA section' };
    if (t.slice(end + 3).trim() !== '') return { reason: 'content after the CDATA section' };
    return t.slice(9, end);
  }
  if (t.includes('<')) return { reason: 'nested elements are not allowed in <RUMReport>' };
  let bad: string | undefined;
  const text = t.replace(/&([a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);|&/g, (m, name: string | undefined) => {
    if (name && ENTITIES[name]) return ENTITIES[name];
    if (name?.startsWith('#')) {
      const code = name.startsWith('#x') ? parseInt(name.slice(2), 16) : Number(name.slice(1));
      if (isXmlChar(code)) return String.fromCodePoint(code);
      bad ??= `${m} (not a character XML allows)`;
      return m;
    }
    bad ??= `unknown entity ${m}`;
    return m;
  });
  return bad ? { reason: bad } : text;
}

/** XML 1.0's Char production: a reference to anything else (&#x110000;, a surrogate, NUL) is malformed. */
function isXmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}
