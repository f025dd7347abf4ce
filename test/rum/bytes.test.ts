import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TAG, type Harness } from '../helpers/harness.js';
import { rumElement, smartLicense } from '../helpers/rum.js';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';
import { invalidOffset } from '../../src/rum/utf8.js';

/**
 * A RUM file's bytes are kept exactly: the original of each report, stored for the upstream,
 * is the file's own bytes from "<RUMReport" to "</RUMReport>", whatever the charset a request
 * claims; bytes that are not UTF-8 are refused, naming the first bad byte, never replaced.
 */
const t = 1_700_000_000;
const element = (serial: string, asset = 'Zürich café, 東京 🚀') =>
  rumElement({ pid: 'C9300-24T', serial, reportId: t, tag: TAG, measurements: [{ start: t, end: t + 86_400, count: 2 }] })
    .replace('regid.2018-05.com.cisco.WLC_9500C', asset)
    .replace(/\n/g, '\r\n'); // CRLF, as a file saved on Windows has it: kept too

/** A file of one element between a BOM, a declaration and a comment, all of it non-ASCII. */
const file = (serial: string): Buffer =>
  Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\r\n<!-- ünïcödé -->\r\n${smartLicense(element(serial))}`)]);

/** The element's bytes as they sit in the file. */
const elementBytes = (f: Buffer) => f.subarray(f.indexOf('<RUMReport>'), f.indexOf('</RUMReport>') + '</RUMReport>'.length);

/** The same file with one byte that cannot be UTF-8 inside the report's asset name (still valid JSON if replaced). */
const withBadByte = (serial: string): { bytes: Buffer; at: number } => {
  const f = file(serial);
  const at = f.indexOf('Zürich') + 1; // the 0xC3 lead byte of "ü"
  const bytes = Buffer.from(f);
  bytes[at + 1] = 0x28; // a lead byte followed by "(": an ill-formed sequence starting at `at`
  return { bytes, at };
};

describe('through the operator API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());
  const stored = (serial: string) =>
    (h.services.db.prepare("SELECT CAST(r.body AS BLOB) AS b FROM reports r JOIN devices d ON d.id = r.device_id WHERE d.udi_serial = ?").get(serial) as { b: Buffer } | undefined)?.b;

  it('when a file claims another charset, then its bytes are still stored exactly', async () => {
    const f = file('FOCBYTES1');
    const r = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml; charset=iso-8859-1').send(f);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(stored('FOCBYTES1')!.equals(elementBytes(f))).toBe(true);
  });

  it('when a byte is not UTF-8, then the file is refused naming that byte, and nothing is written', async () => {
    const { bytes, at } = withBadByte('FOCBAD1');
    const r = await h.api.post(`/api/v1/usage/rum?vaId=${h.defaultVa}`).set('content-type', 'application/xml').send(bytes);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_utf8', details: { byteOffset: at } });
    expect(r.body.error.message).toContain(`byte ${at} (0xc3)`);
    expect(stored('FOCBAD1')).toBeUndefined();
    expect(h.count("SELECT count(*) FROM devices WHERE udi_serial = 'FOCBAD1'")).toBe(0);
  });
});

describe('through the outpost command', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  const work = tempDir('rum-bytes');
  const stored = (serial: string) => {
    const db = new Database(join(dir, 'outpost.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT CAST(r.body AS BLOB) AS b FROM reports r JOIN devices d ON d.id = r.device_id WHERE d.udi_serial = ?').get(serial) as { b: Buffer } | undefined)?.b;
    } finally {
      db.close();
    }
  };

  it('when a file is imported, then the stored original is its bytes exactly', async () => {
    const f = file('FOCBYTES2');
    writeFileSync(join(work, 'ok.xml'), f);
    const r = await cli(['usage', 'import', join(work, 'ok.xml'), '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).accepted).toBe(1);
    expect(stored('FOCBYTES2')!.equals(elementBytes(f))).toBe(true);
  });

  it('when a byte is not UTF-8, then the command fails naming that byte, and nothing is written', async () => {
    const { bytes, at } = withBadByte('FOCBAD2');
    writeFileSync(join(work, 'bad.xml'), bytes);
    const r = await cli(['usage', 'import', join(work, 'bad.xml')], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`not valid UTF-8: byte ${at} (0xc3)`);
    expect(r.stderr).toContain('invalid_utf8');
    expect(stored('FOCBAD2')).toBeUndefined();
  });
});

describe('the first byte that is not UTF-8', () => {
  const cases: [string, number[], number][] = [
    ['a stray continuation byte', [0x61, 0x80, 0x61], 1],
    ['a byte that is never UTF-8', [0x61, 0x62, 0xff], 2],
    ['an overlong encoding', [0x61, 0xc0, 0xaf], 1],
    ['an overlong three-byte encoding', [0x61, 0xe0, 0x80, 0xaf], 1],
    ['a surrogate', [0x61, 0xed, 0xa0, 0x80], 1],
    ['a code point beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['a character cut off at the end', [0x61, 0x62, 0xe2, 0x82], 2],
    ['valid text', [0x61, 0xc3, 0xbc, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x9a, 0x80], 10],
  ];
  for (const [what, bytes, at] of cases) {
    it(`is found in ${what}`, () => expect(invalidOffset(Uint8Array.from(bytes), 0)).toBe(at));
  }
  it('is found from a chunk boundary that falls inside a character', () => {
    const bytes = Uint8Array.from([0x61, 0xe2, 0x82, 0xac, 0x61, 0xff]);
    expect(invalidOffset(bytes, 3)).toBe(5);
  });
});
