import fc from 'fast-check';
import { HOSTILE_STRINGS } from './hostile.js';

/** One change to a file's bytes, as a disk, a network or an attacker makes them. */
export type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'truncate'; at: number }
  | { op: 'append'; bytes: number[] }
  | { op: 'overwrite'; at: number; bytes: number[] }
  | { op: 'insert'; at: number; text: string }
  | { op: 'random'; bytes: number[] };

/** Positions are fractions of the length, so one mutation fits any file. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), mask: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('append' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 2048 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('overwrite' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 64 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), text: fc.constantFrom(...HOSTILE_STRINGS.filter((s) => s.length < 200)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('random' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4096 }) }) },
);

export function mutate(src: Buffer, m: Mutation): Buffer {
  const pos = (f: number) => Math.max(0, Math.min(src.length - 1, Math.floor(f * src.length)));
  if (src.length === 0 && m.op !== 'append' && m.op !== 'insert' && m.op !== 'random') return src;
  switch (m.op) {
    case 'flip': {
      const b = Buffer.from(src);
      b[pos(m.at)] = b[pos(m.at)]! ^ m.mask;
      return b;
    }
    case 'truncate':
      return src.subarray(0, pos(m.at));
    case 'append':
      return Buffer.concat([src, Buffer.from(m.bytes)]);
    case 'overwrite': {
      const b = Buffer.from(src);
      Buffer.from(m.bytes).copy(b, pos(m.at));
      return b;
    }
    case 'insert':
      return Buffer.concat([src.subarray(0, pos(m.at)), Buffer.from(m.text, 'utf8'), src.subarray(pos(m.at))]);
    case 'random':
      return Buffer.from(m.bytes);
  }
}

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 3 });
export const applyAll = (src: Buffer, ms: Mutation[]) => ms.reduce(mutate, src);
