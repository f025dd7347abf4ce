import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { tempDir } from '../helpers/temp.js';

/** Bundles through the browser: downloaded from the collector, and a response uploaded to it. */
let s: Site;
beforeEach(async () => {
  s = await startSite({ exchange: { maxResponseBytes: 64 * 1024 } });
});
afterEach(() => s.close());

const pending = () => s.h.count('SELECT count(*) FROM report_pending');
const bytesOf = (res: any, cb: (err: Error | null, body: any) => void) => { // superagent hands the raw response stream
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  res.on('end', () => cb(null, Buffer.concat(parts)));
};
const upload = (bytes: Buffer, headers: Record<string, string> = {}) => {
  let q = s.h.api.post('/api/v1/exchange/upload').set('content-type', 'application/octet-stream');
  for (const [k, v] of Object.entries(headers)) q = q.set(k, v);
  return q.send(bytes);
};
/** What an upload must not change: the store's exchange state and the bundle folder's files. */
const snapshot = () => ({
  bundles: s.h.count('SELECT count(*) FROM bundles'),
  pending: pending(),
  events: s.h.count('SELECT count(*) FROM events'),
  files: readdirSync(s.h.config.exchange.bundleDir, { recursive: true }).map(String).sort(),
});

describe('bundles through the browser', () => {
  it('when the usage bundle is downloaded, processed upstream and its response uploaded, then the reports are settled as by an import', async () => {
    s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'subscription', quantity: 5, startsAt: Date.now() - 86_400_000, endsAt: Date.now() + 365 * 86_400_000 });
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 2, undefined, 'r1'));
    const exp = await s.exportNow();
    const down = await s.h.api.get(`/api/v1/exchange/bundles/${exp.bundleId}/download`).buffer(true).parse(bytesOf).expect(200);
    expect(down.headers['content-type']).toBe('application/octet-stream');
    expect(down.headers['content-disposition']).toMatch(/^attachment; filename="[\w.-]+\.opb"$/);
    expect(Buffer.compare(down.body as Buffer, readFileSync(exp.file))).toBe(0);

    // The upstream reads the downloaded copy, as it would from an operator's laptop.
    const copy = join(tempDir('laptop'), 'usage.opb');
    writeFileSync(copy, down.body as Buffer);
    const processed = await s.up.process(copy);
    expect(pending()).toBe(1);
    const res = await upload(readFileSync(processed.responseFile)).expect(200);
    expect(res.body).toMatchObject({ status: 'applied', acks: { accepted: 1, rejected: 0 } });
    expect(res.body.archivedAs).toMatch(/archive\/uploaded-\w+\.opb$/);
    expect(pending()).toBe(0);
    expect((await d.send('GET', '/device/v1/acks', '')).body).toMatchObject({ acks: [{ reportId: 'r1', status: 'accepted' }] });
    // The same bytes again: the answer /exchange/import gives a second time.
    expect((await upload(readFileSync(processed.responseFile)).expect(200)).body.status).toBe('already_imported');
    // No upload's temporary file is left in the bundle folder.
    expect(readdirSync(s.h.config.exchange.bundleDir).filter((n) => n.startsWith('.upload-'))).toEqual([]);

    const history = (await s.h.api.get('/api/v1/exchange/bundles').expect(200)).body.items as { id: string; direction: string; records: number; outcome: { status: string; by: string | null } }[];
    const usage = history.find((b) => b.id === exp.bundleId)!;
    const response = history.find((b) => b.direction === 'in')!;
    expect(usage).toMatchObject({ records: 1, outcome: { status: 'answered', by: response.id } });
    expect(response.outcome.status).toBe('applied');
    // The applied response is kept, and downloads as the bytes that were uploaded.
    const kept = await s.h.api.get(`/api/v1/exchange/bundles/${response.id}/download`).buffer(true).parse(bytesOf).expect(200);
    expect(Buffer.compare(kept.body as Buffer, readFileSync(processed.responseFile))).toBe(0);
  });

  it('when an upload is larger than exchange.maxResponseBytes, then it is refused with 413 naming the limit, and nothing changes', async () => {
    const d = await s.h.registered();
    await d.sendReport(d.report(TAG, 1));
    await s.exportNow();
    const before = snapshot();
    const big = Buffer.alloc(64 * 1024 + 1, 7);
    const declared = await upload(big).expect(413);
    expect(declared.body.error).toMatchObject({ code: 'body_too_large', details: { limitBytes: 65536, setting: 'exchange.maxResponseBytes' } });
    expect(declared.body.error.message).toMatch(/exchange\.maxResponseBytes/);
    // Sent in chunks with no length announced, the limit is found while the bytes stream in.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL('/api/v1/exchange/upload', s.h.url);
      import('node:http').then(({ request }) => {
        const req = request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        for (let i = 0; i < 20; i++) req.write(Buffer.alloc(8 * 1024, 1));
        req.end();
      }, reject);
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.code).toBe('body_too_large');
    expect(snapshot()).toEqual(before);
  });

  it('when a page of another site uploads, or the body is not octet-stream, then it is refused and nothing changes', async () => {
    const before = snapshot();
    const bytes = Buffer.from('whatever a page would send');
    const origin = await upload(bytes, { origin: 'http://evil.example' }).expect(403);
    expect(origin.body.error.code).toBe('cross_site_request');
    const site = await upload(bytes, { 'sec-fetch-site': 'cross-site' }).expect(403);
    expect(site.body.error.code).toBe('cross_site_request');
    // The types a page may send without a preflight (a form's) are not taken, even from the collector's own origin.
    for (const type of ['multipart/form-data; boundary=x', 'text/plain', 'application/x-www-form-urlencoded']) {
      const r = await s.h.api.post('/api/v1/exchange/upload').set('content-type', type).send('x=1').expect(415);
      expect(r.body.error.message).toMatch(/application\/octet-stream/);
    }
    expect(snapshot()).toEqual(before);
    // The collector's own origin may; bytes that are no bundle are refused, and, as the inbox does
    // with a file it refuses, kept in rejected/ with the reason and put on the audit trail.
    const own = await upload(bytes, { origin: s.h.url, 'sec-fetch-site': 'same-origin' });
    expect(own.status).toBe(400);
    const kept = own.body.error.details.keptAs as string;
    expect(kept).toMatch(/rejected\/uploaded-\w+\.opb$/);
    expect(readFileSync(kept, 'utf8')).toBe('whatever a page would send');
    expect(readFileSync(`${kept}.reason`, 'utf8')).toContain(own.body.error.code);
    const ev = s.h.services.db.prepare("SELECT actor, details FROM events WHERE type = 'exchange.rejected'").all() as { actor: string; details: string }[];
    expect(ev).toHaveLength(1);
    expect(JSON.parse(ev[0]!.details)).toMatchObject({ code: own.body.error.code, movedTo: kept, via: 'upload' });
    const after = snapshot();
    expect({ ...after, events: after.events - 1, files: after.files.filter((f) => !f.startsWith('rejected/')) }).toEqual(before);
  });

  it('when a bundle is unknown or its file was moved away, then the download is a 404 saying so', async () => {
    await s.h.api.get('/api/v1/exchange/bundles/nope/download').expect(404);
    const exp = await s.exportNow();
    expect(statSync(exp.file).isFile()).toBe(true);
    const { rmSync } = await import('node:fs');
    rmSync(exp.file);
    const r = await s.h.api.get(`/api/v1/exchange/bundles/${exp.bundleId}/download`).expect(404);
    expect(r.body.error.code).toBe('bundle_file_missing');
  });
});
