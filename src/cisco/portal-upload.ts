import { createWriteStream, rmSync, renameSync, statSync, type WriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TarWriter } from '../exchange/tar.js';

/**
 * The vendor portal's manual usage upload, written the way Cisco's published sample for the
 * IOS-XE Smart Licensing Using Policy APIs builds it (Cisco sample code, Cisco Sample Code
 * License 1.1, 2021: `run_offline_rum`, which the portal accepts as a manual upload; see also
 * developer.cisco.com/docs/ios-xe/smart-licensing "Recommended Workflows"):
 *
 *   UD_SA_<time>.tar.gz            gzip'd tar, members in this order:
 *     manifest.mf                  Manifest-Version, Created-By, Smart-Account(-ID), blank line,
 *                                  Name: /UD_VA_<time>.tar.gz, Specification-VA(-ID)
 *     UD_VA_<time>.tar.gz          gzip'd tar of one file per device:
 *       dev_<id>_<time>.txt        <smartLicense><RUMReport>…</RUMReport>…</smartLicense>
 *
 * <time> is the sample's `%y%b%d_%H_%M_%S_%f`[:-3] (here in UTC). Where this departs from the
 * sample: the sample's manifest names the inner file `.ta.gz` while it writes `_py.tar.gz`;
 * here the manifest names the inner file exactly as written. The sample re-serialises each
 * report (`json.dumps`); here every report goes in as the device gave it, so its signature
 * still covers the same bytes.
 */

export class PortalUploadError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One report as the device gave it. `rum-element`: a `<RUMReport>` element imported from a
 * file, kept byte for byte. `polled-json`: the exact bytes of one element of a device's
 * `all-reports` answer, which goes into CDATA.
 */
export interface PortalReport {
  key: string;
  kind: 'rum-element' | 'polled-json';
  original: Buffer;
}

export interface PortalDevice {
  /** Digits only: the portal's ACK file names carry it back as `ACK_dev_<id>_…`, split on `_`. */
  devId: string;
  reports: PortalReport[];
}

export interface PortalUploadOptions {
  /** Sets <time> and every tar member's mtime: the same input and time give the same bytes. */
  createdAt: Date;
  /** Goes into `Created-By` as the sample's `{"uuid": …}`: the collector's own id. */
  creatorUuid: string;
  smartAccount?: string;
  smartAccountId?: string;
  virtualAccount?: string;
  virtualAccountId?: string;
}

export interface PortalUploadFile {
  devId: string;
  fileName: string;
  /** In the order they stand in the file. An ACK for this file acknowledges these reports. */
  reportKeys: string[];
}

export interface PortalUploadResult {
  timeTag: string;
  /** The name the sample gives the outer archive; the caller chooses the path. */
  suggestedName: string;
  innerName: string;
  manifest: string;
  files: PortalUploadFile[];
  bytes: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** The sample's `%y%b%d_%H_%M_%S_%f`[:-3], in UTC so that a site's time zone changes nothing. */
export function portalTimeTag(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new PortalUploadError('bad_time', 'the upload time is not a valid date');
  return `${two(d.getUTCFullYear() % 100)}${MONTHS[d.getUTCMonth()]}${two(d.getUTCDate())}_${two(d.getUTCHours())}_${two(d.getUTCMinutes())}_${two(d.getUTCSeconds())}_${String(d.getUTCMilliseconds()).padStart(3, '0')}`;
}

const OPEN = Buffer.from('<RUMReport><![CDATA[');
const CLOSE = Buffer.from(']]></RUMReport>');
const CDATA_END = Buffer.from(']]>');
// A CDATA section cannot hold "]]>": end the section after "]]" and open a new one for ">".
const CDATA_SPLIT = Buffer.from(']]]]><![CDATA[>');

/** A polled report's JSON bytes as one `<RUMReport>` element; `]]>` inside is split across two CDATA sections. */
export function cdataElement(json: Buffer): Buffer {
  const parts: Buffer[] = [OPEN];
  let from = 0;
  for (let at = json.indexOf(CDATA_END, from); at !== -1; at = json.indexOf(CDATA_END, from)) {
    parts.push(json.subarray(from, at), CDATA_SPLIT);
    from = at + CDATA_END.length;
  }
  parts.push(json.subarray(from), CLOSE);
  return Buffer.concat(parts);
}

const ELEMENT_END = Buffer.from('</RUMReport>');

function element(devId: string, r: PortalReport): Buffer {
  if (!r.original.length) throw new PortalUploadError('empty_report', `report ${r.key} of dev_${devId} is empty`);
  if (r.kind === 'polled-json') return cdataElement(r.original);
  if (r.kind !== 'rum-element') throw new PortalUploadError('bad_report', `report ${r.key} of dev_${devId} has an unknown kind ${JSON.stringify(r.kind)}`);
  // An imported original goes in unchanged, so it must be one whole element: anything after its
  // first end tag would land in the portal's file as markup of its own.
  const head = r.original.subarray(0, 11).toString('latin1');
  if (!/^<RUMReport[\s>]/.test(head) || r.original.indexOf(ELEMENT_END) !== r.original.length - ELEMENT_END.length) {
    throw new PortalUploadError('bad_report', `report ${r.key} of dev_${devId} is not one <RUMReport> element: it must start with <RUMReport> and end at its only </RUMReport>`);
  }
  return r.original;
}

/** One device's file: the sample writes the elements side by side, with nothing between them. */
export function deviceFile(device: PortalDevice): Buffer {
  return Buffer.concat([Buffer.from('<smartLicense>'), ...device.reports.map((r) => element(device.devId, r)), Buffer.from('</smartLicense>')]);
}

function headerValue(name: string, value: string | undefined): string {
  const v = value ?? '';
  if (v.length > 256 || /[\u0000-\u001f\u007f]/.test(v)) throw new PortalUploadError('bad_manifest_value', `${name} must be one line of at most 256 printable characters`);
  return v.trim();
}

/** The sample's manifest, line for line (its empty Smart-Account has no space after the colon, its VA lines do). */
export function portalManifest(opts: PortalUploadOptions, innerName: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(opts.creatorUuid)) throw new PortalUploadError('bad_manifest_value', 'the creator uuid must be 1 to 64 letters, digits or dashes');
  const sa = headerValue('Smart-Account', opts.smartAccount);
  const saId = headerValue('Smart-Account-ID', opts.smartAccountId);
  const va = headerValue('Specification-VA', opts.virtualAccount);
  const vaId = headerValue('Specification-VA-ID', opts.virtualAccountId);
  return [
    'Manifest-Version: 1.0',
    `Created-By: "{\\"uuid\\": \\"${opts.creatorUuid}\\"}"`,
    `Smart-Account:${sa ? ' ' + sa : ''}`,
    `Smart-Account-ID:${saId ? ' ' + saId : ''}`,
    '',
    `Name: /${innerName}`,
    `Specification-VA: ${va}`,
    `Specification-VA-ID: ${vaId}`,
    '',
  ].join('\n');
}

function validate(devices: PortalDevice[]): void {
  if (!devices.length) throw new PortalUploadError('nothing_to_export', 'no device has a report to upload');
  const ids = new Set<string>();
  for (const d of devices) {
    if (!/^(0|[1-9][0-9]{0,17})$/.test(d.devId)) throw new PortalUploadError('bad_dev_id', `device id ${JSON.stringify(d.devId)} must be a number of 1 to 18 digits without leading zeros: the portal answers with ACK_dev_<id>_… and the id is read back as a number`);
    if (ids.has(d.devId)) throw new PortalUploadError('duplicate_dev_id', `device id ${d.devId} is given twice`);
    ids.add(d.devId);
    if (!d.reports.length) throw new PortalUploadError('nothing_to_export', `dev_${d.devId} has no report to upload`);
    const keys = new Set<string>();
    for (const r of d.reports) {
      if (keys.has(r.key)) throw new PortalUploadError('duplicate_report', `report ${r.key} is given twice for dev_${d.devId}`);
      keys.add(r.key);
    }
  }
}

// TarWriter needs only a Writable's write, end and events; a gzip stream is one.
const asOut = (w: NodeJS.WritableStream) => w as unknown as WriteStream;

async function writeGzipTar(path: string, mtimeSec: number, fill: (tar: TarWriter) => Promise<void>): Promise<void> {
  // mtime 0 in the gzip header (zlib's default) keeps the bytes a function of the input alone.
  const gzip = createGzip({ level: 9 });
  const done = pipeline(gzip, createWriteStream(path, { flags: 'wx' }));
  done.catch(() => {}); // awaited below; until then a failure must not go unhandled
  const tar = new TarWriter(asOut(gzip), mtimeSec);
  try {
    await fill(tar);
    await tar.finish();
  } catch (e) {
    gzip.destroy(e as Error);
    await done.catch(() => {});
    throw e;
  }
  await done;
}

/**
 * Writes the upload archive to `path` (which must not exist) and returns which reports went
 * into which `dev_<id>` file. Devices and reports are written in the order given. The archive
 * appears at `path` whole or not at all.
 */
export async function writePortalUpload(path: string, devices: PortalDevice[], opts: PortalUploadOptions): Promise<PortalUploadResult> {
  validate(devices);
  const timeTag = portalTimeTag(opts.createdAt);
  const mtimeSec = Math.floor(opts.createdAt.getTime() / 1000);
  const innerName = `UD_VA_${timeTag}.tar.gz`;
  const manifest = portalManifest(opts, innerName);
  const files = devices.map((d) => ({ devId: d.devId, fileName: `dev_${d.devId}_${timeTag}.txt`, reportKeys: d.reports.map((r) => r.key) }));
  // Every device file is rendered (and so checked) before anything is written.
  const bodies = devices.map(deviceFile);

  const part = `${path}.part-${process.pid}`;
  const inner = `${path}.inner-${process.pid}`;
  try {
    statSync(path);
    throw new PortalUploadError('exists', `${path} already exists`);
  } catch (e) {
    if (e instanceof PortalUploadError) throw e;
  }
  try {
    await writeGzipTar(inner, mtimeSec, async (tar) => {
      for (let i = 0; i < files.length; i++) await tar.addBuffer(files[i]!.fileName, bodies[i]!);
    });
    await writeGzipTar(part, mtimeSec, async (tar) => {
      await tar.addBuffer('manifest.mf', Buffer.from(manifest));
      await tar.addFile(innerName, inner, statSync(inner).size);
    });
    renameSync(part, path);
  } finally {
    rmSync(inner, { force: true });
    rmSync(part, { force: true });
  }
  return { timeTag, suggestedName: `UD_SA_${timeTag}.tar.gz`, innerName, manifest, files, bytes: statSync(path).size };
}
