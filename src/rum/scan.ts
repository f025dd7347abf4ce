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

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function scanRum(text: string): ScanResult {
  const elements: ScannedElement[] = [];
  const problems: ScanProblem[] = [];
  let pos = 0;
  let index = 0;
  let wrapperOpen = false;
  let wrapperSeen = false;

  const where = (at: number) => {
    let line = 1;
    let last = -1;
    for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) (line++, (last = i));
    return { line, column: at - last };
  };
  const problem = (at: number, reason: string, idx: number | null = null) => problems.push({ index: idx, ...where(at), reason });
  const skipWs = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };

  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  if (/<!DOCTYPE|<!ENTITY/i.test(text.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, ''))) {
    const at = text.search(/<!DOCTYPE|<!ENTITY/i);
    problem(at, 'DTDs and entity declarations are not accepted in RUM files');
    return { elements, problems };
  }
  skipWs();
  if (text.startsWith('<?xml', pos)) {
    const end = text.indexOf('?>', pos);
    if (end === -1) return (problem(pos, 'unterminated XML declaration'), { elements, problems });
    pos = end + 2;
  }
  for (;;) {
    skipWs();
    if (pos >= text.length) break;
    const start = pos;
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end === -1) return (problem(start, 'unterminated comment'), { elements, problems });
      pos = end + 3;
      continue;
    }
    const open = /^<smartLicense(\s[^<>]*)?>/.exec(text.slice(pos, pos + 200));
    if (open) {
      if (wrapperSeen) return (problem(start, 'a file holds at most one <smartLicense> element'), { elements, problems });
      wrapperOpen = wrapperSeen = true;
      pos += open[0].length;
      continue;
    }
    if (text.startsWith('</smartLicense>', pos)) {
      if (!wrapperOpen) return (problem(start, '</smartLicense> without its opening tag'), { elements, problems });
      wrapperOpen = false;
      pos += '</smartLicense>'.length;
      continue;
    }
    const rum = /^<RUMReport\s*>/.exec(text.slice(pos, pos + 30));
    if (!rum) {
      return (problem(start, `unexpected content ${JSON.stringify(text.slice(pos, pos + 20))}; expected <RUMReport>`), { elements, problems });
    }
    index++;
    const close = text.indexOf('</RUMReport>', pos);
    if (close === -1) return (problem(start, 'unterminated <RUMReport> element', index), { elements, problems });
    const inner = text.slice(pos + rum[0].length, close);
    pos = close + '</RUMReport>'.length;
    const content = innerText(inner);
    if (typeof content !== 'string') {
      problem(start, content.reason, index);
      continue;
    }
    elements.push({ index, ...where(start), raw: text.slice(start, pos), content });
  }
  if (wrapperOpen) problem(text.length, '<smartLicense> is not closed');
  return { elements, problems };
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
    if (name?.startsWith('#x')) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name?.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)));
    bad ??= m;
    return m;
  });
  return bad ? { reason: `unknown entity ${bad}` } : text;
}
