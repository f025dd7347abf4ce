import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { SaxesParser } from 'saxes';
import { readTar, TarError, type TarEntry } from '../exchange/tar.js';

/**
 * Reads the vendor portal's ACK archive: a gzip'd tar holding one `ACK_UD_VA….tar.gz`, itself a
 * gzip'd tar of `ACK_dev_<id>_…` files, each an XML document
 * `<smartLicense><smartLicenseRumAck><data>…</data></smartLicenseRumAck>[<smartLicensePolicy>…]</smartLicense>`
 * that goes to device <id> as it is (Cisco's sample, `run_offline_ack`, pushes the file's text
 * to `/smartlic-service/import`). The file comes from outside, so it is read through the
 * exchange's strict tar reader (no links, devices, directories, extended headers, absolute or
 * ".." paths), every gunzip is bounded, and the XML is parsed with no DTD and no entities.
 * Anything out of line refuses the whole archive: a caller marks nothing and delivers nothing.
 */

export class PortalAckError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly member?: string,
  ) {
    super(member ? `${member}: ${message}` : message);
  }
}

export interface AckLimits {
  /** The archive file as it lies on disk. */
  maxArchiveBytes: number;
  /** Decompressed bytes of the outer tar, and separately of the inner one. */
  maxUnpackedBytes: number;
  /** The inner ACK_UD_VA….tar.gz member. */
  maxInnerArchiveBytes: number;
  /** One ACK_dev_… file. */
  maxAckBytes: number;
  /** Members of each tar, ignored ones included. */
  maxMembers: number;
}

// A real ACK file is a few kilobytes; these leave room for tens of thousands of devices.
export const DEFAULT_ACK_LIMITS: AckLimits = {
  maxArchiveBytes: 64 << 20,
  maxUnpackedBytes: 256 << 20,
  maxInnerArchiveBytes: 64 << 20,
  maxAckBytes: 1 << 20,
  maxMembers: 100_000,
};

export interface DeviceAck {
  devId: string;
  member: string;
  /** The file's exact bytes: what the device is given. Its <data> stays opaque. */
  content: Buffer;
  hasPolicy: boolean;
}

export interface AckSkip {
  member: string;
  reason: string;
}

export interface PortalAckResult {
  innerName: string;
  acks: DeviceAck[];
  /** Members read and left aside: ACKs for devices not in the upload, files the portal adds. */
  skipped: AckSkip[];
}

const INNER = /^ACK_UD_VA[A-Za-z0-9._-]*\.tar\.gz$/;
// The sample reads the id as `name.split('_')[2]`.
const ACK_FILE = /^ACK_dev_([0-9]{1,18})(?:[_.][A-Za-z0-9._-]*)?$/;

/** Passes bytes on and fails the stream once more than `max` have passed. */
function capped(max: number, what: string): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > max) cb(new PortalAckError('too_large', `${what} unpacks to more than ${max} bytes: refused as a possible gzip bomb`));
      else cb(null, chunk);
    },
  });
}

/** Reads a gzip'd tar from `source` under the caps, calling `onEntry` for each counted member. */
async function readGzipTar(source: Readable, what: string, limits: AckLimits, onEntry: (e: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const out = capped(limits.maxUnpackedBytes, what);
  // The callback sees the first error of the chain; readTar sees it too, through `out`.
  pipeline(source, createGunzip(), out, () => {});
  let members = 0;
  try {
    await readTar(out, async (entry, body) => {
      if (++members > limits.maxMembers) throw new PortalAckError('too_many_members', `${what} holds more than ${limits.maxMembers} members`);
      await onEntry(entry, body);
    });
  } catch (e) {
    if (e instanceof PortalAckError) throw e;
    if (e instanceof TarError) throw new PortalAckError(e.code, `${what}: ${e.message}`);
    const code = String((e as { code?: unknown }).code ?? '');
    if (code.startsWith('Z_') || code.startsWith('ERR_')) throw new PortalAckError('bad_gzip', `${what} is not a whole gzip file: ${(e as Error).message}`);
    throw e;
  }
}

async function collect(body: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  const buf = Buffer.concat(parts);
  if (buf.length !== size) throw new TarError('truncated', 'a member ends early');
  return buf;
}

const MAX_DEPTH = 32;

/**
 * Checks one ACK file's shape and tells whether it carries a policy. DOCTYPE is refused before
 * parsing and again by the parser: a DTD is where entity expansion ("billion laughs") and
 * external entities live, and no ACK needs one. Entity references other than XML's five and
 * character references are errors in saxes, so nothing is expanded.
 */
export function checkAckXml(member: string, content: Buffer): { hasPolicy: boolean } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    throw new PortalAckError('bad_xml', 'is not UTF-8 text', member);
  }
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new PortalAckError('xml_dtd', 'holds a DOCTYPE or ENTITY declaration; an ACK never does, and entities are not expanded', member);
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: string[] = [];
  let rumAcks = 0;
  let data = 0;
  let hasPolicy = false;
  let root: string | undefined;
  parser.on('doctype', () => {
    throw new PortalAckError('xml_dtd', 'holds a DOCTYPE declaration', member);
  });
  parser.on('opentag', (tag) => {
    if (stack.length >= MAX_DEPTH) throw new PortalAckError('bad_xml', `nests elements deeper than ${MAX_DEPTH}`, member);
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = tag.name;
    else if (parent === 'smartLicense' && stack.length === 1 && tag.name === 'smartLicenseRumAck') rumAcks++;
    else if (parent === 'smartLicense' && stack.length === 1 && tag.name === 'smartLicensePolicy') hasPolicy = true;
    else if (parent === 'smartLicenseRumAck' && stack.length === 2 && tag.name === 'data') data++;
    stack.push(tag.name);
  });
  parser.on('closetag', () => void stack.pop());
  try {
    parser.write(text.replace(/^\uFEFF/, '')).close();
  } catch (e) {
    if (e instanceof PortalAckError) throw e;
    throw new PortalAckError('bad_xml', `is not well-formed XML: ${(e as Error).message}`, member);
  }
  if (root !== 'smartLicense') throw new PortalAckError('not_an_ack', `its root element is <${root ?? ''}>, not <smartLicense>`, member);
  if (rumAcks !== 1 || data !== 1) throw new PortalAckError('not_an_ack', 'must hold exactly one <smartLicenseRumAck> with one <data> under <smartLicense>', member);
  return { hasPolicy };
}

/**
 * Reads the ACK archive at `path`. `expected` holds the device ids of the upload the ACK
 * answers: an ACK for another id is skipped and listed, as the sample does. Throws
 * PortalAckError naming the member and the problem on anything else out of line.
 */
export async function readPortalAck(path: string, expected: ReadonlySet<string>, limits: AckLimits = DEFAULT_ACK_LIMITS): Promise<PortalAckResult> {
  const size = statSync(path).size;
  if (size > limits.maxArchiveBytes) throw new PortalAckError('too_large', `the archive is ${size} bytes, more than ${limits.maxArchiveBytes}`);
  const skipped: AckSkip[] = [];
  let inner: { name: string; bytes: Buffer } | undefined;
  await readGzipTar(createReadStream(path), 'the archive', limits, async (entry, body) => {
    if (!INNER.test(entry.name)) {
      skipped.push({ member: entry.name, reason: 'not an ACK_UD_VA….tar.gz' });
      return; // readTar drains it, and the cap counts it
    }
    if (inner) throw new PortalAckError('ambiguous', `the archive holds two ACK archives (${inner.name} and ${entry.name})`, entry.name);
    if (entry.size > limits.maxInnerArchiveBytes) throw new PortalAckError('too_large', `is ${entry.size} bytes, more than ${limits.maxInnerArchiveBytes}`, entry.name);
    inner = { name: entry.name, bytes: await collect(body, entry.size) };
  });
  if (!inner) throw new PortalAckError('no_ack', 'the archive holds no ACK_UD_VA….tar.gz member');
  const innerName = inner.name;

  const acks: DeviceAck[] = [];
  const seen = new Set<string>();
  await readGzipTar(Readable.from([inner.bytes]), innerName, limits, async (entry, body) => {
    const m = ACK_FILE.exec(entry.name);
    if (!m) {
      skipped.push({ member: `${innerName}/${entry.name}`, reason: 'not an ACK_dev_<id> file' });
      return;
    }
    const devId = m[1]!.replace(/^0+(?=\d)/, '');
    const member = `${innerName}/${entry.name}`;
    if (entry.size > limits.maxAckBytes) throw new PortalAckError('too_large', `is ${entry.size} bytes, more than ${limits.maxAckBytes}`, member);
    if (seen.has(devId)) throw new PortalAckError('ambiguous', `is a second ACK for dev_${devId}`, member);
    seen.add(devId);
    const content = await collect(body, entry.size);
    const { hasPolicy } = checkAckXml(member, content);
    if (!expected.has(devId)) {
      skipped.push({ member, reason: `dev_${devId} is not in the upload this ACK answers` });
      return;
    }
    acks.push({ devId, member, content, hasPolicy });
  });
  return { innerName, acks, skipped };
}
