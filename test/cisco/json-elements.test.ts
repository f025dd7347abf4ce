import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrayElements } from '../../src/cisco/json-elements.js';

describe('the elements of a polled answer, byte for byte', () => {
  it('when an answer holds reports, then each element comes back as the exact text the device wrote', () => {
    const text = '{ "other": {"usage": [1]}, "usage" : [ {"payload":"{\\"a\\":1}","header":{"x":[1,2,{"y":"]}"}]}} ,\n  {"b" : 1.50e3, "c": "\\u00e9\\"}"} ], "tail": null }';
    expect(arrayElements(text, 'usage')).toEqual(['{"payload":"{\\"a\\":1}","header":{"x":[1,2,{"y":"]}"}]}}', '{"b" : 1.50e3, "c": "\\u00e9\\"}"}']);
    expect(arrayElements('{"usage": []}', 'usage')).toEqual([]);
    expect(arrayElements('{"usage": {}}', 'usage')).toEqual({ reason: 'no "usage" array' });
    expect(arrayElements('{"usage": [', 'usage')).toMatchObject({ reason: expect.stringContaining('not JSON') });
    expect(arrayElements('[]', 'usage')).toEqual({ reason: 'not a JSON object' });
  });

  it('for any JSON object holding an array, then the elements parse to what JSON.parse gives', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.dictionary(fc.string(), fc.jsonValue()), fc.boolean(), (items, rest, pretty) => {
        const obj = { ...rest, usage: items };
        const text = JSON.stringify(obj, null, pretty ? 2 : undefined);
        const got = arrayElements(text, 'usage');
        expect(Array.isArray(got)).toBe(true);
        expect((got as string[]).map((t) => JSON.parse(t))).toEqual(JSON.parse(text).usage);
      }),
      { numRuns: 300 },
    );
  });
});
