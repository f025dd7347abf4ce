/**
 * The elements of one array member of a JSON object, each as the exact text the device wrote:
 * a polled report's original is its bytes in the device's answer, not a re-serialisation
 * (which could reorder keys or change number and escape spellings). The whole text is parsed
 * first, so only valid JSON gets here; this walk then finds the member's elements by position.
 */
export function arrayElements(text: string, member: string): string[] | { reason: string } {
  let top: unknown;
  try {
    top = JSON.parse(text);
  } catch (e) {
    return { reason: `not JSON: ${(e as Error).message}` };
  }
  if (typeof top !== 'object' || top === null || Array.isArray(top)) return { reason: 'not a JSON object' };
  if (!Array.isArray((top as Record<string, unknown>)[member])) return { reason: `no "${member}" array` };
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const skipString = () => {
    i++; // the opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  /** Skips one value of any kind, starting at its first character. */
  const skipValue = () => {
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        ws();
        if (c === '{') {
          skipString();
          ws();
          i++; // the colon
          ws();
        }
        skipValue();
        ws();
        if (text[i++] === close) return;
      }
    }
    while (i < text.length && !',}] \t\n\r'.includes(text[i]!)) i++; // a number, true, false or null
  };
  // The top-level object: find the member (the last one of that name, as JSON.parse keeps).
  let found: string[] | undefined;
  ws();
  i++; // {
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // :
    ws();
    if (key === member && text[i] === '[') {
      const elements: string[] = [];
      i++;
      ws();
      if (text[i] === ']') i++;
      else
        for (;;) {
          ws();
          const start = i;
          skipValue();
          elements.push(text.slice(start, i));
          ws();
          if (text[i++] === ']') break;
        }
      found = elements;
    } else skipValue();
    ws();
    if (text[i++] === '}') break;
  }
  return found ?? { reason: `no "${member}" array` };
}
