import fc from 'fast-check';

/** Strings that have broken parsers, paths, logs and terminals somewhere. */
export const HOSTILE_STRINGS = [
  '', ' ', '\0', 'a\0b', '\u0007\u001b[31mred\u001b[0m', '\r\nSet-Cookie: x=1', '\u202e\u0644\u202dlive\u202c', '\u2066x\u2069',
  '../../../../etc/passwd', '..\\..\\windows', '/etc/passwd', '%2e%2e%2f', '%00', '%', '%zz', '\ud800', '\udfff', '\ufeff',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '{"__proto__":{"polluted":1}}',
  "' OR 1=1 --", '"; DROP TABLE devices; --', '<script>alert(1)</script>', '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
  '${jndi:ldap://x}', '{{7*7}}', 'NaN', 'Infinity', '-0', '1e309', '9007199254740993', '0x10', 'true', 'null', 'undefined',
  '\u{1F4A9}'.repeat(3000), 'é'.repeat(70_000), 'a'.repeat(5000), 'ǅ\u0301\u0301\u0301\u0301', '\u0000'.repeat(64),
];

export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'toString', 'valueOf'];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', 'é', '\u202e', '\0', '/'), fc.integer({ min: 256, max: 20_000 })).map(([c, n]) => c.repeat(n)) },
);

/**
 * A JSON value as text, built by hand so that keys JSON.stringify would never write (a literal
 * "__proto__", duplicates) reach the server as a client could send them.
 */
export type Json = { t: 'raw'; text: string } | { t: 'arr'; items: Json[] } | { t: 'obj'; entries: [string, Json][] };

export function jsonText(j: Json): string {
  switch (j.t) {
    case 'raw':
      return j.text;
    case 'arr':
      return `[${j.items.map(jsonText).join(',')}]`;
    case 'obj':
      return `{${j.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`;
  }
}

const scalar: fc.Arbitrary<Json> = fc
  .oneof(
    hostileString.map((s) => JSON.stringify(s)),
    fc.constantFrom('null', 'true', 'false', '0', '-1', '1e308', '-1e-308', '1.5', '9007199254740993', '123456789012345678901234567890', '-0'),
    fc.integer().map(String),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  )
  .map((text) => ({ t: 'raw' as const, text }));

const key = fc.oneof(fc.constantFrom(...PROTO_KEYS), hostileString, fc.string({ maxLength: 12 }));

/** Any JSON value, nested a little, with hostile strings and keys. */
export const jsonValue: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('v'), { maxLength: 4 }).map((items) => ({ t: 'arr' as const, items })),
    fc.array(fc.tuple(key, tie('v')), { maxLength: 4 }).map((entries) => ({ t: 'obj' as const, entries })),
  ),
})).v;

/** The fields a route's body schema names, each given a value of any (mostly wrong) type, and a few keys it does not know. */
export function bodyFor(fields: string[]): fc.Arbitrary<Json> {
  const known = fields.length ? fc.subarray(fields).chain((ks) => fc.tuple(...ks.map((k) => jsonValue.map((v) => [k, v] as [string, Json])))) : fc.constant([] as [string, Json][]);
  return fc
    .tuple(known, fc.array(fc.tuple(key, jsonValue), { maxLength: 2 }))
    .map(([a, b]) => ({ t: 'obj' as const, entries: [...a, ...b] }));
}

/** Text that is not JSON, or JSON a strict parser refuses at the root. */
export const malformedJson: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('{', '}', '{"a":}', '{"a":1,}', "{'a':1}", '[1,2', 'nul', '{"a":1}garbage', '\ufeff{}x', '{"a":"\\u12"}', '{"a":NaN}', '{"a":01}', '\0', '{"\0":1', '[' .repeat(5000)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);

/** Content types a JSON route must not take. */
export const oddContentType = fc.constantFrom(
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/html',
  'application/octet-stream', 'application/jsonx', 'json', ';', 'application/json; charset=utf-7', 'a'.repeat(300),
);
