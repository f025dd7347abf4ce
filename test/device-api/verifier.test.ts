import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, privateKeyObject, signWith } from '../../src/shared/ed25519.js';
import { inlineVerifier, PooledVerifier } from '../../src/device-api/verifier.js';

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

  it('when a worker dies, then its batch and later ones are checked on the main thread, and the failure is reported once', async () => {
    const failures: Error[] = [];
    const pool = new PooledVerifier(WORKER, 1, (e) => failures.push(e));
    const [good] = signed(1);
    expect(await pool.verify(good!.key, good!.sig, good!.data)).toBe(true);
    // Kill the worker from outside, as a crash would.
    await (pool as unknown as { workers: { worker: { terminate(): Promise<number> } }[] }).workers[0]!.worker.terminate();
    const after = await Promise.all([pool.verify(good!.key, good!.sig, good!.data), pool.verify(good!.key, good!.sig, good!.data + '!')]);
    expect(after).toEqual([true, false]);
    expect(failures).toHaveLength(1);
    await pool.close();
  });
});
