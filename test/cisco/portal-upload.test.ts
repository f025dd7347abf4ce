import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cdataElement, PortalUploadError, writePortalUpload, type PortalDevice } from '../../src/cisco/portal-upload.js';
import { SaxesParser } from 'saxes';
import { tempDir } from '../helpers/temp.js';

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/rum/c9800-cl-example.xml', import.meta.url));
const AT = new Date(Date.UTC(2026, 10, 29, 19, 17, 11, 123));
const TAG = '26Nov29_19_17_11_123';
const OPTS = { createdAt: AT, creatorUuid: '7d0c6a4e-1f7b-4a53-9a3e-2b1c5d6e7f80', smartAccount: 'Example Corp', smartAccountId: '12345', virtualAccount: 'Campus', virtualAccountId: '678' };

/** The real report, as an import keeps it: the element, byte for byte. */
const fixtureElement = (): Buffer => {
  const file = readFileSync(FIXTURE);
  const end = Buffer.from('</RUMReport>');
  return file.subarray(file.indexOf('<RUMReport>'), file.lastIndexOf(end) + end.length);
};

/** A polled report's JSON with "]]>" inside a string, as a device could answer it, odd spacing kept. */
const polledJson = Buffer.from('{"payload": "{\\"note\\":\\"a]]>b ]]>\\"}",\n  "header": {"a":1},  "signature": {"value":"x]]>"}}');

function devices(): PortalDevice[] {
  return [
    { devId: '1', reports: [{ key: 'udi-a/1671840750', kind: 'rum-element', original: fixtureElement() }] },
    {
      devId: '42',
      reports: [
        { key: 'udi-b/7', kind: 'polled-json', original: polledJson },
        { key: 'udi-b/8', kind: 'polled-json', original: Buffer.from('{"payload":"{}"}') },
      ],
    },
  ];
}

/** Unpacks with the system's tar and zcat, as a person checking the file would. */
function unpack(archive: string): { outer: string[]; manifest: string; inner: string[]; files: Map<string, Buffer> } {
  const dir = tempDir('portal-read');
  const listed = execFileSync('sh', ['-c', `zcat "$1" | tar -tf -`, 'sh', archive]).toString().trim().split('\n');
  execFileSync('tar', ['-xzf', archive, '-C', dir]);
  const innerDir = join(dir, 'inner');
  mkdirSync(innerDir);
  const innerName = listed[1]!;
  execFileSync('sh', ['-c', `zcat "$1" | tar -xf - -C "$2"`, 'sh', join(dir, innerName), innerDir]);
  const inner = execFileSync('tar', ['-tzf', join(dir, innerName)]).toString().trim().split('\n');
  const files = new Map(readdirSync(innerDir).map((n) => [n, readFileSync(join(innerDir, n))]));
  return { outer: listed, manifest: readFileSync(join(dir, 'manifest.mf'), 'utf8'), inner, files };
}

/** The report bytes inside one device file, found by the sample's markers and un-split. */
function reportsIn(file: Buffer): Buffer[] {
  const text = file.toString('latin1');
  expect(text.startsWith('<smartLicense>') && text.endsWith('</smartLicense>')).toBe(true);
  const out: Buffer[] = [];
  const re = /<RUMReport>([\s\S]*?)<\/RUMReport>/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(Buffer.from(m[0], 'latin1'));
  return out;
}

describe('portal upload archive', () => {
  it('holds manifest.mf and UD_VA_<time>.tar.gz with one dev_<id>_<time>.txt per device, every report as the device gave it', async () => {
    const path = join(tempDir('portal-up'), 'upload.tar.gz');
    const res = await writePortalUpload(path, devices(), OPTS);
    const got = unpack(path);

    expect(got.outer).toEqual(['manifest.mf', `UD_VA_${TAG}.tar.gz`]);
    expect(got.manifest.split('\n')).toEqual([
      'Manifest-Version: 1.0',
      'Created-By: "{\\"uuid\\": \\"7d0c6a4e-1f7b-4a53-9a3e-2b1c5d6e7f80\\"}"',
      'Smart-Account: Example Corp',
      'Smart-Account-ID: 12345',
      '',
      `Name: /UD_VA_${TAG}.tar.gz`,
      'Specification-VA: Campus',
      'Specification-VA-ID: 678',
      '',
    ]);
    expect(got.inner).toEqual([`dev_1_${TAG}.txt`, `dev_42_${TAG}.txt`]);

    // The imported element goes in byte for byte, newlines around its CDATA and all.
    expect(reportsIn(got.files.get(`dev_1_${TAG}.txt`)!)).toEqual([fixtureElement()]);
    expect(got.files.get(`dev_1_${TAG}.txt`)).toEqual(Buffer.concat([Buffer.from('<smartLicense>'), fixtureElement(), Buffer.from('</smartLicense>')]));

    // A polled report comes back whole once its CDATA sections are joined.
    const polled = reportsIn(got.files.get(`dev_42_${TAG}.txt`)!);
    expect(polled).toHaveLength(2);
    const joined = (el: Buffer) => {
      const t = el.toString('latin1');
      const sections = [...t.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)].map((m) => m[1]);
      expect(t.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '')).toBe('<RUMReport></RUMReport>');
      return Buffer.from(sections.join(''), 'latin1');
    };
    expect(joined(polled[0]!)).toEqual(polledJson);
    expect(joined(polled[1]!)).toEqual(Buffer.from('{"payload":"{}"}'));

    // And an XML parser reads each device file back to the same JSON text.
    const viaXml = (file: Buffer) => {
      const p = new SaxesParser();
      const texts: string[] = [];
      p.on('opentag', (t) => t.name === 'RUMReport' && texts.push(''));
      p.on('cdata', (c) => (texts[texts.length - 1] += c));
      p.write(file.toString('utf8')).close();
      return texts;
    };
    expect(viaXml(got.files.get(`dev_42_${TAG}.txt`)!)).toEqual([polledJson.toString('utf8'), '{"payload":"{}"}']);
    const fixtureJson = fixtureElement().toString('utf8').match(/<!\[CDATA\[([\s\S]*)\]\]>/)![1];
    expect(viaXml(got.files.get(`dev_1_${TAG}.txt`)!)).toEqual([fixtureJson]);

    expect(res.files).toEqual([
      { devId: '1', fileName: `dev_1_${TAG}.txt`, reportKeys: ['udi-a/1671840750'] },
      { devId: '42', fileName: `dev_42_${TAG}.txt`, reportKeys: ['udi-b/7', 'udi-b/8'] },
    ]);
    expect(res.suggestedName).toBe(`UD_SA_${TAG}.tar.gz`);
    expect(res.bytes).toBe(readFileSync(path).length);
  });

  it('splits "]]>" so that an XML parser reads the JSON back exactly', () => {
    expect(cdataElement(Buffer.from('a]]>b')).toString()).toBe('<RUMReport><![CDATA[a]]]]><![CDATA[>b]]></RUMReport>');
    expect(cdataElement(Buffer.from(']]>]]>')).toString()).toBe('<RUMReport><![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]></RUMReport>');
    expect(cdataElement(Buffer.from('plain')).toString()).toBe('<RUMReport><![CDATA[plain]]></RUMReport>');
  });

  it('writes the same bytes for the same input and time', async () => {
    const dir = tempDir('portal-det');
    await writePortalUpload(join(dir, 'a.tar.gz'), devices(), OPTS);
    await writePortalUpload(join(dir, 'b.tar.gz'), devices(), OPTS);
    expect(readFileSync(join(dir, 'a.tar.gz')).equals(readFileSync(join(dir, 'b.tar.gz')))).toBe(true);
  });

  it('leaves the empty account fields as the sample writes them', async () => {
    const path = join(tempDir('portal-empty'), 'u.tar.gz');
    const res = await writePortalUpload(path, devices(), { createdAt: AT, creatorUuid: 'abc' });
    expect(res.manifest).toBe(`Manifest-Version: 1.0\nCreated-By: "{\\"uuid\\": \\"abc\\"}"\nSmart-Account:\nSmart-Account-ID:\n\nName: /UD_VA_${TAG}.tar.gz\nSpecification-VA: \nSpecification-VA-ID: \n`);
  });

  it.each([
    ['a device id that is not digits', [{ devId: '1_2', reports: devices()[0]!.reports }], 'bad_dev_id'],
    ['a device id with leading zeros, which the ACK would name as another', [{ devId: '007', reports: devices()[0]!.reports }], 'bad_dev_id'],
    ['a device twice', [devices()[0]!, devices()[0]!], 'duplicate_dev_id'],
    ['a device with no report', [{ devId: '3', reports: [] }], 'nothing_to_export'],
    ['no device', [], 'nothing_to_export'],
    ['an imported original with markup after its element', [{ devId: '3', reports: [{ key: 'k', kind: 'rum-element' as const, original: Buffer.from('<RUMReport>x</RUMReport></smartLicense><x></RUMReport>') }] }], 'bad_report'],
    ['an imported original that is not an element', [{ devId: '3', reports: [{ key: 'k', kind: 'rum-element' as const, original: Buffer.from('{"payload":"{}"}') }] }], 'bad_report'],
    ['an empty report', [{ devId: '3', reports: [{ key: 'k', kind: 'polled-json' as const, original: Buffer.alloc(0) }] }], 'empty_report'],
    ['a report key twice', [{ devId: '3', reports: [{ key: 'k', kind: 'polled-json' as const, original: polledJson }, { key: 'k', kind: 'polled-json' as const, original: polledJson }] }], 'duplicate_report'],
  ])('refuses %s and writes nothing', async (_what, input, code) => {
    const dir = tempDir('portal-bad');
    const path = join(dir, 'u.tar.gz');
    const err = await writePortalUpload(path, input as PortalDevice[], OPTS).catch((e) => e);
    expect(err).toBeInstanceOf(PortalUploadError);
    expect((err as PortalUploadError).code).toBe(code);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a manifest value spanning lines, and an existing file', async () => {
    const dir = tempDir('portal-bad2');
    const err = await writePortalUpload(join(dir, 'u.tar.gz'), devices(), { ...OPTS, virtualAccount: 'VA\nName: /evil' }).catch((e) => e);
    expect((err as PortalUploadError).code).toBe('bad_manifest_value');
    expect(readdirSync(dir)).toEqual([]);
    await writePortalUpload(join(dir, 'u.tar.gz'), devices(), OPTS);
    const again = await writePortalUpload(join(dir, 'u.tar.gz'), devices(), OPTS).catch((e) => e);
    expect((again as PortalUploadError).code).toBe('exists');
    expect(readdirSync(dir)).toEqual(['u.tar.gz']);
  });
});
