import { describe, expect, it } from 'vitest';
import { createWriteStream, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import { checkAckXml, DEFAULT_ACK_LIMITS, PortalAckError, readPortalAck } from '../../src/cisco/portal-ack.js';
import { tarHeader } from '../../src/exchange/tar.js';
import { tarBytes, type Member } from '../helpers/tar-craft.js';
import { tempDir } from '../helpers/temp.js';

const TAG = '26Nov29_19_17_11_123';
const INNER = `ACK_UD_VA_${TAG}.tar.gz`;

const ack = (data: string, policy = false) =>
  Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<smartLicense><smartLicenseRumAck><data>${data}</data></smartLicenseRumAck>` +
      (policy ? '<smartLicensePolicy><policy><name>Custom</name></policy></smartLicensePolicy>' : '') +
      '</smartLicense>\n',
  );

/** An ACK archive as the portal sends one: a gzip'd tar holding a gzip'd tar of ACK_dev_ files. */
function archive(inner: Member[], outerExtra: Member[] = [], innerName = INNER): Buffer {
  return gzipSync(tarBytes([{ name: 'manifest.mf', data: Buffer.from('Manifest-Version: 1.0\n') }, ...outerExtra, { name: innerName, data: gzipSync(tarBytes(inner)) }]));
}

function save(bytes: Buffer): { dir: string; path: string } {
  const dir = tempDir('portal-ack');
  const path = join(dir, 'ack.tar.gz');
  writeFileSync(path, bytes);
  return { dir, path };
}

async function refusal(bytes: Buffer, expected = new Set(['1', '2']), limits = DEFAULT_ACK_LIMITS): Promise<PortalAckError> {
  const { dir, path } = save(bytes);
  const err = await readPortalAck(path, expected, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PortalAckError);
  expect(readdirSync(dir)).toEqual(['ack.tar.gz']); // nothing extracted, nothing left beside it
  return err as PortalAckError;
}

const good = (): Member[] => [
  { name: `ACK_dev_1_${TAG}.txt`, data: ack('QUNLLTE=&amp;x') },
  { name: `ACK_dev_2_${TAG}.txt`, data: ack('QUNLLTI=', true) },
];

describe('portal ACK archive', () => {
  it('gives each device its ACK file byte for byte, and says which carry a policy', async () => {
    const { path } = save(archive(good()));
    const res = await readPortalAck(path, new Set(['1', '2']));
    expect(res.innerName).toBe(INNER);
    expect(res.acks).toEqual([
      { devId: '1', member: `${INNER}/ACK_dev_1_${TAG}.txt`, content: ack('QUNLLTE=&amp;x'), hasPolicy: false },
      { devId: '2', member: `${INNER}/ACK_dev_2_${TAG}.txt`, content: ack('QUNLLTI=', true), hasPolicy: true },
    ]);
    expect(res.skipped).toEqual([{ member: 'manifest.mf', reason: 'not an ACK_UD_VA….tar.gz' }]);
  });

  it('skips an ACK for a device the upload did not hold, and delivers the others', async () => {
    const { path } = save(archive([...good(), { name: `ACK_dev_77_${TAG}.txt`, data: ack('eA==') }]));
    const res = await readPortalAck(path, new Set(['1', '2']));
    expect(res.acks.map((a) => a.devId)).toEqual(['1', '2']);
    expect(res.skipped).toContainEqual({ member: `${INNER}/ACK_dev_77_${TAG}.txt`, reason: 'dev_77 is not in the upload this ACK answers' });
  });

  it.each([
    ['a symlink in the outer tar', archive(good(), [{ name: 'link', data: Buffer.alloc(0), type: '2' }]), 'not_regular_file'],
    ['a hardlink in the inner tar', archive([...good(), { name: `ACK_dev_3_${TAG}.txt`, data: Buffer.alloc(0), type: '1' }]), 'not_regular_file'],
    ['a directory', archive([{ name: 'sub', data: Buffer.alloc(0), type: '5' }, ...good()]), 'not_regular_file'],
    ['a ../ path', archive([{ name: `../ACK_dev_1_${TAG}.txt`, data: ack('x') }]), 'unsafe_path'],
    ['an absolute path', archive([], [{ name: `/tmp/ACK_dev_1_${TAG}.txt`, data: ack('x') }]), 'unsafe_path'],
    ['a pax header, which can rename a member', archive([{ name: 'PaxHeader', data: Buffer.from('30 path=../../etc/cron.d/x\n'), type: 'x' }, ...good()]), 'extended_header'],
    ['an ACK file over its size cap', archive([{ name: `ACK_dev_1_${TAG}.txt`, data: Buffer.alloc(DEFAULT_ACK_LIMITS.maxAckBytes + 1, 0x61) }]), 'too_large'],
    ['two ACK archives', gzipSync(tarBytes([{ name: INNER, data: gzipSync(tarBytes(good())) }, { name: `ACK_UD_VA_other.tar.gz`, data: gzipSync(tarBytes(good())) }])), 'ambiguous'],
    ['two ACKs for one device', archive([...good(), { name: `ACK_dev_1_other.txt`, data: ack('eA==') }]), 'ambiguous'],
    ['no ACK archive', gzipSync(tarBytes([{ name: 'manifest.mf', data: Buffer.from('x') }])), 'no_ack'],
    ['a file that is not gzip', tarBytes(good()), 'bad_gzip'],
    ['a cut-short gzip', archive(good()).subarray(0, 200), 'bad_gzip'],
  ])('refuses %s', async (_what, bytes, code) => {
    const err = await refusal(bytes);
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
  });

  it('names the member when an ACK file is refused', async () => {
    const err = await refusal(archive([{ name: `ACK_dev_1_${TAG}.txt`, data: Buffer.from('<smartLicense><smartLicenseRumAck><data>x</dat></smartLicenseRumAck></smartLicense>') }, ...good().slice(1)]));
    expect(err.code).toBe('bad_xml');
    expect(err.member).toBe(`${INNER}/ACK_dev_1_${TAG}.txt`);
    expect(err.message).toContain(`ACK_dev_1_${TAG}.txt`);
  });

  it('refuses a billion-laughs DOCTYPE, an external entity, and an undeclared entity without expanding anything', async () => {
    const laughs = Buffer.from(
      '<?xml version="1.0"?>\n<!DOCTYPE smartLicense [\n<!ENTITY lol "lol">\n' +
        Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('\n') +
        '\n]>\n<smartLicense><smartLicenseRumAck><data>&lol9;</data></smartLicenseRumAck></smartLicense>',
    );
    expect((await refusal(archive([{ name: `ACK_dev_1_${TAG}.txt`, data: laughs }]))).code).toBe('xml_dtd');
    const xxe = Buffer.from('<!doctype smartLicense [<!ENTITY x SYSTEM "file:///etc/passwd">]><smartLicense><smartLicenseRumAck><data>&x;</data></smartLicenseRumAck></smartLicense>');
    expect((await refusal(archive([{ name: `ACK_dev_1_${TAG}.txt`, data: xxe }]))).code).toBe('xml_dtd');
    expect(() => checkAckXml('m', Buffer.from('<smartLicense><smartLicenseRumAck><data>&lol;</data></smartLicenseRumAck></smartLicense>'))).toThrow(/not well-formed/);
  });

  it.each([
    ['malformed XML', '<smartLicense><smartLicenseRumAck><data>x</smartLicenseRumAck>', 'bad_xml'],
    ['text after the root', '<smartLicense><smartLicenseRumAck><data>x</data></smartLicenseRumAck></smartLicense><x/>', 'bad_xml'],
    ['another root', '<smartLicensePolicy/>', 'not_an_ack'],
    ['an ACK without <data>', '<smartLicense><smartLicenseRumAck></smartLicenseRumAck></smartLicense>', 'not_an_ack'],
    ['two RUM ACKs', '<smartLicense><smartLicenseRumAck><data>a</data></smartLicenseRumAck><smartLicenseRumAck><data>b</data></smartLicenseRumAck></smartLicense>', 'not_an_ack'],
    ['deep nesting', '<smartLicense>' + '<a>'.repeat(100) + '</a>'.repeat(100) + '</smartLicense>', 'bad_xml'],
    ['bytes that are not UTF-8', Buffer.from([0x3c, 0xff, 0xfe, 0x3e]), 'bad_xml'],
  ])('refuses an ACK file with %s', async (_what, xml, code) => {
    const err = await refusal(archive([...good(), { name: `ACK_dev_3_${TAG}.txt`, data: Buffer.isBuffer(xml) ? xml : Buffer.from(xml) }]), new Set(['1', '2', '3']));
    expect(err.code).toBe(code);
    expect(err.member).toBe(`${INNER}/ACK_dev_3_${TAG}.txt`);
  });

  it('refuses more members than the cap, and an inner archive over its cap', async () => {
    const many = Array.from({ length: 6 }, (_, i) => ({ name: `note_${i}.txt`, data: Buffer.from('x') }));
    const limits = { ...DEFAULT_ACK_LIMITS, maxMembers: 5 };
    expect((await refusal(archive([...good(), ...many]), undefined, limits)).code).toBe('too_many_members');
    expect((await refusal(archive(good()), undefined, { ...DEFAULT_ACK_LIMITS, maxInnerArchiveBytes: 100 })).code).toBe('too_large');
    expect((await refusal(archive(good()), undefined, { ...DEFAULT_ACK_LIMITS, maxArchiveBytes: 100 })).code).toBe('too_large');
  });

  it('stops a gzip bomb at the unpacked-size cap, with the default limits', async () => {
    // About 260 MiB of tar in under 1 MiB of gzip: members the reader skips, but must still unpack.
    const dir = tempDir('portal-bomb');
    const bomb = join(dir, 'bomb.tar.gz');
    const filler = Buffer.alloc(1 << 20, 0x61);
    async function* tar() {
      for (let i = 0; i < 260; i++) {
        yield tarHeader(`filler_${i}.bin`, filler.length, 1_700_000_000);
        yield filler;
      }
      yield Buffer.alloc(1024);
    }
    await pipeline(Readable.from(tar()), createGzip({ level: 1 }), createWriteStream(bomb));
    const err = await readPortalAck(bomb, new Set(['1'])).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PortalAckError);
    expect((err as PortalAckError).code).toBe('too_large');
    expect((err as Error).message).toMatch(/gzip bomb/);
    expect(readdirSync(dir)).toEqual(['bomb.tar.gz']);
  });

  it('stops a bomb inside the inner archive too', async () => {
    const filler = Buffer.alloc(1 << 20, 0x61);
    const inner = [...good(), ...Array.from({ length: 8 }, (_, i) => ({ name: `filler_${i}.bin`, data: filler }))];
    const err = await refusal(archive(inner), undefined, { ...DEFAULT_ACK_LIMITS, maxUnpackedBytes: 4 << 20 });
    expect(err.code).toBe('too_large');
    expect(err.message).toContain(INNER);
  });
});
