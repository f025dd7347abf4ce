import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TAG } from '../helpers/harness.js';
import { startSite, type Site } from '../helpers/exchange.js';
import { members, writeTar } from '../helpers/tar-craft.js';
import nacl from 'tweetnacl';
import { nextKey } from '../../src/identity/identity.js';
import { rotationMeta } from '../../src/exchange/rotation.js';
import { writeBundle } from '../../src/exchange/write.js';
import { newId } from '../../src/shared/ids.js';

let s: Site;
beforeEach(async () => {
  s = await startSite();
  s.up.service.addEntitlement({ account: 'ACME', va: 'Default', tag: TAG, displayName: 'DNA', kind: 'perpetual', quantity: 9, startsAt: 0, endsAt: null });
});
afterEach(() => s.close());

const report = async (id: string) => {
  const d = await s.h.registered();
  await d.sendReport(d.report(TAG, 1, undefined, id));
};

describe('when the collector rotates its key with a bundle in transit', () => {
  it('then the bundle signed by the old key is still accepted, and later bundles carry the new key', async () => {
    await report('before');
    const inTransit = await s.exportNow(); // signed by the old key, not yet carried
    const oldKey = s.h.services.identity.fingerprint;
    const rot = (await s.h.api.post('/api/v1/exchange/rotate-key').send({ graceDays: 30 }).expect(200)).body;
    expect(rot).toMatchObject({ oldKeyId: oldKey, fromSequence: inTransit.sequence + 2 });
    expect(s.h.services.identity.fingerprint).toBe(rot.newKeyId);
    await report('after');
    const later = await s.exportNow();

    expect((await s.up.service.acceptCollectorRotation(rot.file)).status).toBe('applied');
    expect((await s.up.service.acceptCollectorRotation(rot.file)).status).toBe('already_applied');
    const r1 = await s.up.process(inTransit.file);
    expect(r1.reports.accepted).toBe(1);
    const r2 = await s.up.process(later.file);
    expect(r2.reports.accepted).toBe(2);
    expect((await s.importFile(r2.responseFile)).status).toBe(200);
    const types = (await s.h.api.get('/api/v1/events?type=collector.key_rotated')).body.items;
    expect(types[0].details).toMatchObject({ from: oldKey, to: rot.newKeyId });
  });

  it("then the old key cannot sign a bundle numbered from the new key's sequence, nor anything after the grace period", async () => {
    await report('x');
    const inTransit = await s.exportNow();
    const rot = (await s.h.api.post('/api/v1/exchange/rotate-key').send({ graceDays: 30 }).expect(200)).body;
    await s.up.service.acceptCollectorRotation(rot.file);
    // Someone holding the old key signs a bundle numbered after the rotation.
    const keys = join(s.h.config.dataDir, 'keys');
    const retired = readdirSync(keys).find((f) => f.startsWith('collector.key.retired-'))!;
    const oldSeed = Buffer.from(readFileSync(join(keys, retired), 'utf8').trim(), 'base64');
    const ms = members(inTransit.file);
    const forged = Buffer.from(ms[0]!.data.toString('utf8').replace(`"sequence": ${inTransit.sequence}`, `"sequence": ${rot.fromSequence}`));
    writeTar(inTransit.file, [{ name: 'manifest.json', data: forged }, { name: 'manifest.sig', data: Buffer.from(nacl.sign.detached(forged, nacl.sign.keyPair.fromSeed(oldSeed).secretKey)) }, ...ms.slice(2)]);
    await expect(s.up.process(inTransit.file)).rejects.toMatchObject({ code: 'retired_signer' });

    // Past the grace period even a bundle from before the rotation is refused.
    const genuine = await s.exportNow(); // new key: fine
    expect((await s.up.process(genuine.file)).reports.accepted).toBe(1);
    s.up.service.db.prepare('UPDATE collector_keys SET grace_until = 0').run();
    writeTar(inTransit.file, ms);
    await expect(s.up.process(inTransit.file, true)).rejects.toMatchObject({ code: 'retired_signer' });
  });

  it('then a statement whose new-key proof is wrong is refused', async () => {
    const rot = (await s.h.api.post('/api/v1/exchange/rotate-key').send({}).expect(200)).body;
    const ms = members(rot.file);
    const text = ms[0]!.data.toString('utf8').replace(/"newKeyProof": "[^"]+"/, `"newKeyProof": "${Buffer.alloc(64, 7).toString('base64')}"`);
    // Re-signed with the old key (as a thief of the old key could), but without the new key's proof.
    const keys = join(s.h.config.dataDir, 'keys');
    const oldSeed = Buffer.from(readFileSync(join(keys, readdirSync(keys).find((f) => f.startsWith('collector.key.retired-'))!), 'utf8').trim(), 'base64');
    const data = Buffer.from(text);
    writeTar(rot.file, [{ name: 'manifest.json', data }, { name: 'manifest.sig', data: Buffer.from(nacl.sign.detached(data, nacl.sign.keyPair.fromSeed(oldSeed).secretKey)) }]);
    await expect(s.up.service.acceptCollectorRotation(rot.file)).rejects.toMatchObject({ code: 'bad_rotation' });
  });
});

describe('when the upstream rotates its key with a response in transit', () => {
  it('then the collector takes the statement, still accepts the in-transit response, and the next under the new key', async () => {
    await report('one');
    const r1 = await s.up.process((await s.exportNow()).file); // signed by the old upstream key
    const oldKey = s.up.service.identity.fingerprint;
    const rot = await s.up.service.rotateOwnKey(30);
    expect(rot.statements).toHaveLength(1);
    const applied = await s.importFile(rot.statements[0]!);
    expect(applied.status).toBe(200);
    expect(applied.body.status).toBe('applied');
    expect((await s.importFile(r1.responseFile)).body.acks.accepted).toBe(1);

    await report('two');
    const r2 = await s.up.process((await s.exportNow()).file);
    const imp2 = await s.importFile(r2.responseFile);
    expect(imp2.status, JSON.stringify(imp2.body)).toBe(200);
    const keys = (await s.h.api.get('/api/v1/exchange/keys')).body.upstream;
    expect(keys.map((k: { keyId: string; status: string }) => [k.keyId, k.status])).toEqual([
      [oldKey, 'retired'],
      [rot.to, 'active'],
    ]);
    const ev = (await s.h.api.get('/api/v1/events?type=exchange.upstream_key_rotated')).body.items[0];
    expect(ev.details).toMatchObject({ from: oldKey, to: rot.to });
  });
});

describe('when someone holding a retired upstream key signs a trust change', () => {
  it('then a key rotation signed by the retired key is refused, pins nothing, and the real upstream\'s responses still apply', async () => {
    await report('one');
    const oldKeyId = s.up.service.identity.fingerprint;
    const rot = await s.up.service.rotateOwnKey(30);
    expect((await s.importFile(rot.statements[0]!)).body.status).toBe('applied');

    // The thief of the old key pins a key of its own, numbered as a bundle still in transit would be.
    const genuine = JSON.parse(members(rot.statements[0]!)[0]!.data.toString('utf8')) as { sequence: number; meta: { fromSequence: number } };
    const upKeys = join(s.h.dir, 'upstream', 'keys');
    const oldSeed = Buffer.from(readFileSync(join(upKeys, readdirSync(upKeys).find((f) => f.startsWith('upstream.key.retired-'))!), 'utf8').trim(), 'base64');
    const thief = nextKey();
    const collectorId = s.h.services.identity.collectorId;
    const forged = await writeBundle(
      join(s.h.dir, 'forged-rotation.opb'),
      {
        kind: 'key-rotation', bundleId: newId('bun', Date.now()), collectorId, accountId: s.h.services.exchange.state.upstreamAccountId!,
        sequence: genuine.meta.fromSequence - 1, lastAnsweredHash: null, answers: null, period: null, createdAt: new Date().toISOString(), eventChainHead: null,
        meta: rotationMeta({ subjectId: collectorId, oldKeyId, newKey: thief.publicKey, fromSequence: 1_000_000, graceDays: 30, signWithNew: thief.signDetached }),
      },
      [],
      { keyId: oldKeyId, sign: (b) => Buffer.from(nacl.sign.detached(b, nacl.sign.keyPair.fromSeed(oldSeed).secretKey)) },
    );
    const refused = await s.importFile(forged.path);
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body.error.code).toBe('retired_signer');
    const pinned = (await s.h.api.get('/api/v1/exchange/keys')).body.upstream.map((k: { keyId: string; status: string }) => [k.keyId, k.status]);
    expect(pinned).toEqual([[oldKeyId, 'retired'], [rot.to, 'active']]);

    // The real upstream goes on as before.
    await report('two');
    const r = await s.up.process((await s.exportNow()).file);
    const applied = await s.importFile(r.responseFile);
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(applied.body.acks.accepted).toBeGreaterThan(0);
  });
});

