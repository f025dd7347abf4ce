import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../helpers/temp.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import { fingerprint, generateKeyPair } from '../../src/shared/ed25519.js';
import { newId } from '../../src/shared/ids.js';
import { writeBundle } from '../../src/exchange/write.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { adminCall } from '../../src/upstream/server/admin-client.js';
import { BUNDLE_MEDIA_TYPE, SYNC_BASE } from '../../src/sync/protocol.js';
import nacl from 'tweetnacl';

let up: RunningUpstream | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await up?.stop(0);
  up = undefined;
});

async function serve(upstream: Record<string, unknown>): Promise<{ up: RunningUpstream; dir: string }> {
  const dir = tempDir('up-attack');
  const config = loadConfig({ env: {}, overrides: { upstream: { dataDir: join(dir, 'upstream'), port: 0, host: '127.0.0.1', ...upstream }, shutdown: { graceSeconds: 1 } } as never });
  up = await startUpstream(config, { logger: createLogger('error', true) });
  return { up, dir };
}

const incomingBytes = (u: RunningUpstream) => {
  const d = join(u.service.dataDir, 'incoming');
  return existsSync(d) ? readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0) : 0;
};

/** A raw connection that posts headers and `send` bytes of a body declared `declared` long, then stalls. Resolves with what came back when the server answers or closes. */
function stalledUpload(u: RunningUpstream, declared: number, send: number) {
  const s = net.connect(u.port, '127.0.0.1');
  sockets.push(s);
  let got = '';
  const answered = new Promise<string>((resolve) => {
    s.on('data', (c) => (got += c.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => undefined);
  });
  s.write(
    `POST ${SYNC_BASE}/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${BUNDLE_MEDIA_TYPE}\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  s.write(Buffer.alloc(send, 0x41));
  return { socket: s, answered, text: () => got };
}

const until = async (what: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return what();
};

describe('unauthenticated uploads', () => {
  it('when many connections each start a large body and stall, then past upstream.maxUploadingBytes they are refused 503 busy at once, and incoming/ never holds more', async () => {
    const { up: u } = await serve({ maxBundleBytes: 1 << 20, maxUploadingBytes: 2 << 20 });
    const uploads = Array.from({ length: 8 }, () => stalledUpload(u, 1 << 20, 256 << 10));
    // Six of the eight cannot be held: they are answered now, not after the body arrives.
    expect(await until(() => uploads.filter((x) => x.text().includes(' 503 ')).length >= 6, 10_000)).toBe(true);
    const busy = uploads.filter((x) => x.text().includes(' 503 '));
    expect(busy).toHaveLength(6);
    expect(busy[0]!.text()).toMatch(/"code":"busy"/);
    expect(busy[0]!.text().toLowerCase()).toContain('retry-after: ');
    expect(incomingBytes(u)).toBeLessThanOrEqual(2 << 20);
    // The two held finish (and fail verification): their room is given back, and nothing is left behind.
    for (const x of uploads) if (!x.text()) x.socket.write(Buffer.alloc((1 << 20) - (256 << 10), 0x41));
    expect(await until(() => uploads.every((x) => x.text().includes('HTTP/1.1 ')), 10_000)).toBe(true);
    expect(await until(() => incomingBytes(u) === 0, 5000)).toBe(true);
    const again = await fetch(`${u.url}${SYNC_BASE}/usage`, { method: 'POST', body: Buffer.alloc(1 << 20, 0x41), headers: { 'content-type': BUNDLE_MEDIA_TYPE } });
    expect(again.status).toBe(400);
  });

  it('when a body stops arriving, then after upstream.bodyTimeoutSeconds the connection is cut and its file in incoming/ removed', async () => {
    const { up: u } = await serve({ maxBundleBytes: 1 << 20, bodyTimeoutSeconds: 1 });
    const x = stalledUpload(u, 1 << 20, 64 << 10);
    expect(await until(() => incomingBytes(u) > 0 || x.socket.destroyed, 5000)).toBe(true);
    // Without a body timeout the request is held for the server's 30-minute request timeout.
    const closed = await Promise.race([x.answered.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 8000))]);
    expect(closed).toBe(true);
    expect(await until(() => incomingBytes(u) === 0, 5000)).toBe(true);
  });
});

/** An enrollment request as anyone can make one: a fresh key pair, any collector id. */
async function enrollmentRequest(dir: string, collectorId = `col_${crypto.randomUUID()}`, accountName = 'ACME') {
  const kp = generateKeyPair();
  const secret = nacl.sign.keyPair.fromSeed(kp.seed).secretKey;
  const fp = fingerprint(kp.publicKey);
  const now = Date.now();
  const out = await writeBundle(
    join(dir, `req-${fp.replace(/:/g, '')}.opb`),
    {
      kind: 'enrollment-request', bundleId: newId('bun', now), collectorId, accountId: 'acc_0123456789abcdef', sequence: 0, lastAnsweredHash: null, answers: null,
      period: null, createdAt: new Date(now).toISOString(), eventChainHead: null, meta: { publicKey: kp.publicKey.toString('base64'), accountName },
    },
    [],
    { keyId: fp, sign: (b) => Buffer.from(nacl.sign.detached(b, secret)) },
  );
  return { file: out.path, collectorId, fingerprint: fp };
}

const postEnroll = async (u: RunningUpstream, file: string) => {
  const r = await fetch(`${u.url}${SYNC_BASE}/enroll`, { method: 'POST', body: readFileSync(file), headers: { 'content-type': BUNDLE_MEDIA_TYPE } });
  const body = (await r.json()) as any;
  return { status: r.status, body };
};

describe('enrollment requests from anyone', () => {
  it("when someone posts a request under another collector's pending id with their own key, then 409 and the victim's request (and fingerprint) stays", async () => {
    const { up: u, dir } = await serve({});
    const victim = await enrollmentRequest(dir);
    expect((await postEnroll(u, victim.file)).status).toBe(202);
    const attacker = await enrollmentRequest(dir, victim.collectorId, 'EVIL');
    const r = await postEnroll(u, attacker.file);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('enrollment_pending');
    const pending = await adminCall(u.socketPath, 'collectorPending', {});
    expect(pending).toEqual([expect.objectContaining({ collectorId: victim.collectorId, fingerprint: victim.fingerprint, accountName: 'ACME' })]);
    // The victim posting again (the same key) is still idempotent.
    expect((await postEnroll(u, victim.file)).status).toBe(202);
    const pinned = await adminCall(u.socketPath, 'collectorAdd', { pending: victim.collectorId, account: 'ACME', fingerprint: victim.fingerprint });
    expect(pinned.pinned).toBe(true);
  });

  it('when requests under fresh ids flood in, then past upstream.maxPendingEnrollments they are refused 503 and nothing more is kept', async () => {
    const { up: u, dir } = await serve({ maxPendingEnrollments: 3 });
    const reqs = await Promise.all(Array.from({ length: 5 }, () => enrollmentRequest(dir)));
    const answers = [];
    for (const q of reqs) answers.push(await postEnroll(u, q.file));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 503, 503]);
    expect(answers[3]!.body.error.code).toBe('too_many_pending');
    expect(readdirSync(join(u.service.dataDir, 'enrollments'))).toHaveLength(3);
    expect(await adminCall(u.socketPath, 'collectorPending', {})).toHaveLength(3);
    // A collector already pending may still post its request again.
    expect((await postEnroll(u, reqs[0]!.file)).status).toBe(202);
  });
});

describe('request targets the URL parser refuses', () => {
  it('when a request names `//` or `//[` as its target, then it is answered 400 bad_target and the upstream goes on serving', async () => {
    const { up: u } = await serve({});
    for (const target of ['//', '//[', '//a b']) {
      const answer = await new Promise<string>((resolve) => {
        const s = net.connect(u.port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
        sockets.push(s);
        let got = '';
        s.on('data', (c) => (got += c));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
      if (target !== '//a b') expect(answer, target).toMatch(/^HTTP\/1\.1 400[\s\S]*bad_target/);
    }
    const hello = await fetch(`${u.url}${SYNC_BASE}/hello`);
    expect(hello.status).toBe(200);
  });
});
