import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { CLI, cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { TAG } from '../helpers/harness.js';
import { rewritePayload } from '../helpers/tar-craft.js';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';

/**
 * The monthly disconnected exchange as operators run it: real processes, real files, the
 * real CLI on both sides of the air gap, and standard tools for the security review.
 */
describe('the disconnected exchange through the real CLI', () => {
  const dir = tempDataDir();
  const env = envFor(dir);
  const bundles = join(dir, '..', 'bundles');
  const upstreamOut = join(dir, '..', 'upstream', 'outbox');
  let server: ServerProcess;
  const json = async (args: string[]) => {
    const r = await cli([...args, '--json'], env, 60_000);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    server = await serve(dir);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('when devices report, the bundles cross both ways, then compliance and device ACKs reflect the upstream', async () => {
    // Devices report to the collector.
    const token = (await json(['token', 'create', '--description', 'e2e', '--uses', '3'])).secret;
    const collectorId = ((await (await request(`${server.url}/device/v1/collector`)).body.json()) as { collectorId: string }).collectorId;
    const devices = [0, 1, 2].map((i) => new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: `E2E${i}` }));
    for (const d of devices) expect((await d.register(token)).status).toBe(201);
    for (const [i, d] of devices.entries()) expect((await d.sendReport(d.report(TAG, i + 1, undefined, `e2e-${i}`))).status).toBe(200);
    // An impostor using a registered device's id with its own key is refused by the server's
    // signature workers, and nothing of its report is kept (the export below holds three).
    const impostor = new SimulatedDevice(server.url, collectorId, devices[0]!.udi);
    impostor.deviceId = devices[0]!.deviceId;
    const forged = await impostor.sendReport(impostor.report(TAG, 99, undefined, 'forged'));
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({ error: { code: 'bad_signature' } });

    // Enrollment, fingerprints confirmed on both sides.
    const req = await json(['enroll', '--account', 'ACME']);
    const up = await json(['upstream', 'init']);
    const unconfirmed = await cli(['upstream', 'collector', 'add', req.file, '--account', 'ACME'], env);
    expect(unconfirmed.code).toBe(3);
    expect(unconfirmed.stdout).toContain(req.fingerprint);
    const added = await json(['upstream', 'collector', 'add', req.file, '--account', 'ACME', '--fingerprint', req.fingerprint]);
    expect((await json(['enroll', 'confirm', added.responseFile, '--fingerprint', up.fingerprint])).pinned).toBe(true);
    await json(['upstream', 'entitlements', 'add', '--account', 'ACME', '--va', 'Default', '--tag', TAG, '--name', 'DNA Network Stack', '--quantity', '5']);

    // Export; the reviewer opens it with tar, zcat and jq, and checks the signature with openssl.
    expect((await json(['export', '--dry-run'])).reports).toBe(3);
    const exp = await json(['export', '--period', '2026-11']);
    expect(exp.reports).toBe(3);
    const review = join(dir, '..', 'review');
    mkdirSync(review);
    execFileSync('tar', ['-xf', exp.file, '-C', review]);
    expect(readdirSync(review).sort()).toEqual(['devices.ndjson.gz', 'manifest.json', 'manifest.sig', 'reports.ndjson.gz', 'usage-summary.ndjson.gz', 'virtual-accounts.ndjson.gz']);
    const ids = execFileSync('sh', ['-c', `zcat ${join(review, 'reports.ndjson.gz')} | jq -r .reportId | sort`]).toString().trim().split('\n');
    expect(ids).toEqual(['e2e-0', 'e2e-1', 'e2e-2']);
    const keys = await json(['bundle', 'verify', exp.file]);
    expect(keys.valid).toBe(true);
    const pem = join(review, 'collector.pem');
    execFileSync('sh', ['-c', `node ${CLI} keys --pem > ${pem}`], { env: { ...process.env, ...env } });
    const verified = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pem, '-rawin', '-in', join(review, 'manifest.json'), '-sigfile', join(review, 'manifest.sig')]).toString();
    expect(verified).toContain('Signature Verified Successfully');

    // A bundle signed by the collector itself but with a malformed line deep inside is refused
    // by the upstream's report reader (a worker thread here), and nothing of it is counted.
    const bad = join(review, 'bad.opb');
    const signer = loadOrCreateIdentity(dir).identity;
    rewritePayload(exp.file, bad, 'reports.ndjson.gz', (lines) => [lines[0]!, '{"ref":', ...lines.slice(1)], (b) => signer.signDetached(b));
    const refused = await cli(['upstream', 'process', bad], env, 60_000);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/reports\.ndjson\.gz line 2.*malformed_payload/);

    // The upstream processes it; the response comes back through the inbox... or the import command.
    const processed = await json(['upstream', 'process', exp.file]);
    expect(processed.reports).toMatchObject({ accepted: 3, new: 3 });
    expect(readdirSync(upstreamOut).some((f) => f.startsWith('response-'))).toBe(true);
    const imported = await json(['import', processed.responseFile]);
    expect(imported).toMatchObject({ status: 'applied', acks: { accepted: 3 } });
    expect(readdirSync(join(bundles, 'archive'))).toContain(processed.responseFile.split('/').pop());
    expect((await json(['import', processed.responseFile])).status).toBe('already_imported');

    const comp = await json(['compliance', '--va', 'Default']);
    expect(comp.tags[0]).toMatchObject({ owned: 5, inUse: 6, status: 'shortage' });
    const acks = await devices[0]!.send('GET', '/device/v1/acks', '');
    expect(acks.body.acks).toEqual([expect.objectContaining({ reportId: 'e2e-0', status: 'accepted' })]);
    const events = (await json(['events', '--type', 'exchange.*'])).map((e: { type: string }) => e.type);
    expect(events).toEqual(expect.arrayContaining(['exchange.exported', 'exchange.imported', 'exchange.upstream_key_pinned']));
  }, 120_000);
});
