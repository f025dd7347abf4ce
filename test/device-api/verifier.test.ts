import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, privateKeyObject, signWith } from '../../src/shared/ed25519.js';
import { inlineVerifier, PooledVerifier, verifyOne } from '../../src/device-api/verifier.js';
import { KeyCache } from '../../src/device-api/key-cache.js';

// The pool runs the built worker (npm test builds first): the server's own path.
const WORKER = new URL('../../dist/device-api/verify-worker.js', import.meta.url);

function signed(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const kp = generateKeyPair();
    const data = `OUTPOST-DEVICE-V1\nPOST\n/device/v1/report\ncol\ndev_${i}\n1700000000\n${'ab'.repeat(32)}`;
    return { key: kp.publicKey.toString('base64'), data, sig: signWith(privateKeyObject(kp.seed), data).toString('base64') };
  });
}

describe('signature checks on worker threads', () => {
  it('when many requests of one turn are checked together, then each gets its own answer', async () => {
    expect(existsSync(fileURLToPath(WORKER)), 'run npm run build first').toBe(true);
    const failures: Error[] = [];
    const pool = new PooledVerifier(WORKER, 2, (e) => failures.push(e));
    try {
      const items = signed(40);
      // Every third one is wrong in a different way: the data, the signature, the key.
      const asked = items.map((it, i) =>
        i % 3 !== 0 ? it : i % 2 === 0 ? { ...it, data: it.data + 'x' } : i % 9 === 3 ? { ...it, key: 'not-a-key' } : { ...it, sig: items[(i + 1) % 40]!.sig },
      );
      const answers = await Promise.all(asked.map((a) => pool.verify(a.key, a.sig, a.data)));
      expect(answers).toEqual(asked.map((_, i) => i % 3 !== 0));
      const inline = inlineVerifier();
      expect(await Promise.all(asked.map((a) => inline.verify(a.key, a.sig, a.data)))).toEqual(answers);
      expect(failures).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('when a worker dies, then its batch is checked on the main thread, a new worker takes over, and the death is reported', async () => {
    const failures: { e: Error; replaced: boolean }[] = [];
    const pool = new PooledVerifier(WORKER, 1, (e, replaced) => failures.push({ e, replaced }));
    const slot = () => (pool as unknown as { workers: { worker: { threadId: number; terminate(): Promise<number> } }[] }).workers[0]!.worker;
    const [good] = signed(1);
    expect(await pool.verify(good!.key, good!.sig, good!.data)).toBe(true);
    const first = slot();
    await first.terminate(); // as a crash would
    const after = await Promise.all([pool.verify(good!.key, good!.sig, good!.data), pool.verify(good!.key, good!.sig, good!.data + '!')]);
    expect(after).toEqual([true, false]);
    expect(failures).toEqual([{ e: expect.any(Error), replaced: true }]);
    expect(slot()).not.toBe(first);
    expect(slot().threadId).not.toBe(first.threadId);
    // The new worker answers (a batch that reached it, not the inline fallback: no new failure).
    expect(await pool.verify(good!.key, good!.sig, good!.data)).toBe(true);
    expect(failures).toHaveLength(1);
    await pool.close();
  });

  it('when a worker keeps dying, then after a few replacements the pool checks inline for good, still answering right', async () => {
    const failures: boolean[] = [];
    const pool = new PooledVerifier(WORKER, 1, (_e, replaced) => failures.push(replaced));
    const slot = () => (pool as unknown as { workers: { worker: { terminate(): Promise<number> } }[] }).workers[0]!.worker;
    const [good] = signed(1);
    for (let i = 0; i < 7; i++) {
      await slot().terminate();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(failures.slice(0, 5)).toEqual([true, true, true, true, true]);
    expect(failures[5]).toBe(false);
    expect(await pool.verify(good!.key, good!.sig, good!.data)).toBe(true);
    await pool.close();
  });
});

describe('the key cache', () => {
  it('when more keys arrive than it holds, then it stays at its bound and keeps the most recently used', () => {
    const cache = new KeyCache(3);
    const keys = signed(5).map((s) => s.key);
    cache.get(keys[0]!);
    cache.get(keys[1]!);
    cache.get(keys[2]!);
    cache.get(keys[0]!); // used again: now the newest
    cache.get(keys[3]!); // evicts keys[1], the least recently used
    expect(cache.size).toBe(3);
    const held = (cache as unknown as { map: Map<string, unknown> }).map;
    expect([...held.keys()]).toEqual([keys[2], keys[0], keys[3]]);
  });

  it('when registrations present fresh keys, then they are checked without being cached', async () => {
    const v = inlineVerifier();
    const regs = signed(50);
    for (const r of regs) expect(await v.verify(r.key, r.sig, r.data, false)).toBe(true);
    const cache = new KeyCache(10);
    for (const r of regs) expect(verifyOne(cache, r.key, r.sig, r.data, false)).toBe(true);
    expect(cache.size).toBe(0);
    expect(verifyOne(cache, regs[0]!.key, regs[0]!.sig, regs[0]!.data)).toBe(true);
    expect(cache.size).toBe(1);
  });
});
