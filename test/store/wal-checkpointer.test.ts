import { existsSync, statSync } from 'node:fs';
import { Writable } from 'node:stream';
import winston from 'winston';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/open.js';
import { WalCheckpointer, WAL_CHECKPOINT_DEFAULTS } from '../../src/store/wal-checkpointer.js';
import { Readiness } from '../../src/metrics/readiness.js';
import { capturingLogger } from '../helpers/secrets.js';
import { tempDir } from '../helpers/temp.js';
import { Agent, request } from 'undici';
import { cli, envFor, serve, tempDataDir } from '../helpers/processes.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { TAG } from '../helpers/harness.js';

const open: { db: Db; cp: WalCheckpointer }[] = [];
afterEach(async () => {
  for (const { db, cp } of open.splice(0)) {
    await cp.stop();
    if (db.open) db.close();
  }
});

const until = async (what: string, ok: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function store(): { db: Db; file: string } {
  const file = join(tempDir('wal'), 'outpost.db');
  const db = openStore(file);
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
  return { db, file };
}

/** About `pages` pages of 4 KiB written in transactions of 50. */
function write(db: Db, pages: number): void {
  const insert = db.prepare('INSERT INTO blobs (body) VALUES (randomblob(4000))');
  const batch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) insert.run();
  });
  for (let done = 0; done < pages; done += 50) batch(50);
}

const FAST = { ...WAL_CHECKPOINT_DEFAULTS, intervalMs: 25 };

describe('WAL checkpoints on a worker thread', () => {
  it('when the worker runs, then the owner no longer checkpoints, the worker copies every frame, the WAL restarts instead of growing, and the store is whole', async () => {
    const { db, file } = store();
    const cp = new WalCheckpointer(db, file, capturingLogger(), FAST);
    open.push({ db, cp });
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await cp.start();
    expect(cp.state().by).toBe('worker');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const seen: number[] = [];
    cp.observer = (_ms, log) => seen.push(log);

    // 20 rounds of ~500 pages: with nobody checkpointing, the WAL would hold all 10,000.
    let most = 0;
    for (let round = 0; round < 20; round++) {
      write(db, 500);
      const before = cp.state().lastAt;
      await until('a checkpoint after the round', () => cp.state().lastAt !== before && cp.state().checkpointedFrames === cp.state().walFrames);
      most = Math.max(most, statSync(`${file}-wal`).size);
    }
    expect(seen.some((n) => n > 0)).toBe(true);
    // A WAL that restarts stays within a few rounds' frames (a writer that meets the worker mid-checkpoint
    // appends instead of restarting, more often on a busy machine), far below the 10,000 pages nobody checkpointing leaves.
    expect(most).toBeLessThan(5000 * 4096);
    const rows = Number(db.prepare('SELECT count(*) FROM blobs').pluck().get());

    await cp.stop();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const again = openStore(file);
    try {
      expect(again.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(Number(again.prepare('SELECT count(*) FROM blobs').pluck().get())).toBe(rows);
    } finally {
      again.close();
    }
  });

  it('when the worker keeps dying, then it is replaced, the owner checkpoints meanwhile, and after too many deaths the owner keeps checkpointing and readiness says why', async () => {
    const { db, file } = store();
    const lines: string[] = [];
    const logger = winston.createLogger({ transports: [new winston.transports.Stream({ stream: new Writable({ write: (c, _e, done) => void (lines.push(String(c)), done()) }) })] });
    const dying = pathToFileURL(join(import.meta.dirname, 'fixtures', 'dying-worker.mjs'));
    const cp = new WalCheckpointer(db, file, logger, { ...FAST, maxRestarts: 3 }, dying);
    open.push({ db, cp });
    await cp.start();
    await until('giving up', () => cp.state().gaveUp !== null);
    expect(cp.state()).toMatchObject({ by: 'owner', restarts: 3 });
    expect(cp.state().gaveUp).toMatch(/failed 4 times in 10 min \(last: it exited with code 3\)/);
    // SQLite's own automatic checkpoint is back: the WAL cannot grow without bound.
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    write(db, 3000);
    expect(statSync(`${file}-wal`).size).toBeLessThan(1500 * 4096);
    const ready = new Readiness(db, file.replace(/outpost\.db$/, ''), 0, cp).check();
    expect(ready.ready).toBe(false);
    expect(ready.checks.walCheckpoints).toEqual({ ok: false, detail: cp.state().gaveUp });
    expect(lines.some((l) => /WAL checkpoints run on the main thread again/.test(l))).toBe(true);
  });

  it('when the worker goes silent, then it is taken for stuck and replaced', async () => {
    const { db, file } = store();
    const dying = pathToFileURL(join(import.meta.dirname, 'fixtures', 'dying-worker.mjs'));
    // The fixture reads '#silent' off the file name it is given; it opens nothing.
    const cp = new WalCheckpointer(db, `${file}#silent`, capturingLogger(), { ...FAST, stallMs: 150, maxRestarts: 1 }, dying);
    open.push({ db, cp });
    await cp.start();
    // Not asserted to be the worker's now: on a loaded machine 150 ms may already have passed.
    await until('a replacement', () => cp.state().restarts === 1);
    await until('giving up on the second', () => cp.state().gaveUp !== null);
    expect(cp.state().gaveUp).toMatch(/said nothing for 0 s/);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});

describe('a running collector', () => {
  it('when devices report, then the worker thread checkpoints, and readiness and metrics say so', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    const server = await serve(dir, env);
    try {
      const token = JSON.parse((await cli(['token', 'create', '--description', 'wal', '--json'], env)).stdout).secret as string;
      const collectorId = ((await (await fetch(`${server.url}/device/v1/collector`)).json()) as { collectorId: string }).collectorId;
      const d = new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: 'WAL-1' });
      expect((await d.register(token)).status).toBe(201);
      for (let i = 0; i < 5; i++) expect((await d.sendReport(d.report(TAG, i + 1))).status).toBe(200);
      let detail = '';
      const end = Date.now() + 10_000;
      while (!detail.startsWith('a worker thread checkpoints; the last at') && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 100));
        const r = (await (await fetch(`${server.url}/readyz`)).json()) as { checks: { walCheckpoints: { ok: boolean; detail: string } } };
        detail = r.checks.walCheckpoints.detail;
      }
      expect(detail).toMatch(/^a worker thread checkpoints; the last at \d{4}-/);
      // The operator's view over the local socket, which the CLI uses too.
      const local = new Agent({ connect: { socketPath: join(dir, 'outpost.sock') } });
      try {
        const text = await (await request('http://localhost/metrics', { dispatcher: local })).body.text();
        const count = Number(/^outpost_wal_checkpoint_seconds_count (\d+)$/m.exec(text)?.[1]);
        expect(count).toBeGreaterThan(0);
        expect(text).toMatch(/^outpost_wal_frames \d+$/m);
      } finally {
        await local.close();
      }
    } finally {
      await server.stop();
    }
  });

  it('when store.checkpoints is commit, then no worker starts and the committing connection checkpoints, as SQLite does by default', async () => {
    const dir = tempDataDir();
    const server = await serve(dir, { ...envFor(dir), OUTPOST_STORE_CHECKPOINTS: 'commit' });
    try {
      const r = (await (await fetch(`${server.url}/readyz`)).json()) as { checks: { walCheckpoints: { ok: boolean; detail: string } } };
      expect(r.checks.walCheckpoints).toEqual({ ok: true, detail: 'checkpoints run as the collector commits' });
    } finally {
      await server.stop();
    }
  });
});
