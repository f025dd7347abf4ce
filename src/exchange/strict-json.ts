/**
 * JSON.parse that refuses duplicate keys. Two readers of one document must see one meaning:
 * with a duplicate key, jq (last wins in some versions, first in others) and a reviewer's eye
 * could disagree with Outpost. Used for manifests and small records, where the cost is nothing.
 */
export class DuplicateKeyError extends Error {}

export function parseStrictJson(text: string): unknown {
  const value: unknown = JSON.parse(text); // syntax first, with the engine's own errors
  checkKeys(text);
  return value;
}

function checkKeys(text: string): void {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) throw new DuplicateKeyError(`duplicate key ${JSON.stringify(key)}`);
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] !== null && stack.length > 0;
    }
  }
}
