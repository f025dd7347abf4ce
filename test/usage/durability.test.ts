import http from 'node:http';
import { fdatasync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import supertest from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildServices, createRequestHandler, databaseFile } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { close, listen } from '../../src/http/server.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import type { FileSync } from '../../src/store/wal-sync.js';
import type { Services } from '../../src/services.js';
import { tempDir } from '../helpers/temp.js';
import { TAG } from '../helpers/harness.js';

/** A real collector (device and operator API on a real port, a real store) whose WAL flush is the given one. */
async function collector(walSync: FileSync) {
  const dir = tempDir('durability');
  const config = loadConfig({
    env: {},
    overrides: { dataDir: join(dir, 'data'), http: { port: 0 }, exchange: { bundleDir: join(dir, 'bundles') } } as never,
  });
  const services = buildServices(config, { logger: createLogger('error', true), walSync });
  const server = http.createServer(createRequestHandler(services));
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const api = supertest(server);
  const token = async () => {
    const res = await api.post('/api/v1/tokens').send({ vaId: services.accounts.list()[0]!.id, description: 't', maxUses: 100, expiresInDays: 30 });
    return res.body.secret as string;
  };
  const device = async (serial: string) => {
    const d = new SimulatedDevice(url, services.identity.collectorId, { pid: 'C9300-24T', serial });
    const r = await d.register(await token());
    expect(r.status).toBe(201);
    return d;
  };
  const stop = async () => {
    await close(server);
    await services.ingest.drain();
    services.db.close();
  };
  running.push(stop);
  return { services, api, device, config };
}

const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});

describe('durability on the real device path', () => {
  it('when devices report concurrently, then every 2xx follows a WAL flush that began after its report was committed', async () => {
    let services: Services | undefined;
    let reader: Database.Database | undefined;
    let order = 0;
    const flushes: { done: number; visible: Set<string> }[] = [];
    // What was committed when each flush began, and when the flush ended, on one counter with the replies.
    const observed: FileSync = (fd, done) => {
      reader ??= new Database(databaseFile(services!.config), { readonly: true });
      const visible = new Set((reader.prepare('SELECT report_id FROM reports').all() as { report_id: string }[]).map((r) => r.report_id));
      setTimeout(() => fdatasync(fd, (e) => {
        flushes.push({ done: ++order, visible });
        done(e);
      }), 3);
    };
    const c = await collector(observed);
    services = c.services;
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => c.device(`DUR${i}`)));
    const replies: { reportId: string; at: number }[] = [];
    await Promise.all(
      devices.map(async (d) => {
        for (let i = 0; i < 25; i++) {
          const sends = [d.report(TAG, i + 1), d.report(TAG, i + 2)].map(async (r) => {
            const res = await d.sendReport(r);
            expect(res.status).toBe(200);
            replies.push({ reportId: r.reportId, at: ++order });
          });
          await Promise.all(sends);
        }
      }),
    );
    reader?.close();
    expect(replies).toHaveLength(400);
    expect(flushes.length).toBeGreaterThan(0);
    expect(flushes.length).toBeLessThan(400); // grouped: replies of one commit share a flush
    for (const r of replies) {
      const covering = flushes.find((f) => f.done < r.at && f.visible.has(r.reportId));
      expect(covering, `report ${r.reportId} was answered with no flush of its commit before the reply`).toBeDefined();
    }
  });

  it('when a WAL flush fails, then that group and every later write are refused (never "duplicate"), reads go on, and the failure is announced once', async () => {
    let failing = false;
    const flaky: FileSync = (fd, done) => (failing ? done(Object.assign(new Error('input/output error'), { code: 'EIO' })) : fdatasync(fd, done));
    const c = await collector(flaky);
    const announced: Error[] = [];
    c.services.ingest.commits.onFailure((e) => announced.push(e));
    const d = await c.device('FAIL1');
    expect((await d.sendReport(d.report(TAG, 1))).status).toBe(200);

    failing = true;
    const lost = d.report(TAG, 2);
    const first = await d.sendReport(lost);
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('storage_unavailable');
    expect(first.headers['retry-after']).toBe('30');

    failing = false; // the disk answers again, but what it holds is unknown until SQLite recovers
    const retry = await d.sendReport(lost);
    expect(retry.status).toBe(503);
    expect(retry.body.error.code).toBe('storage_failed');
    expect(retry.body.error.message).toContain('until it restarts');
    const fresh = await d.sendReport(d.report(TAG, 3));
    expect(fresh.status).toBe(503);
    const newcomer = new SimulatedDevice(d.baseUrl, d.collectorId, { pid: 'C9300-24T', serial: 'FAIL2' });
    expect((await newcomer.register('any-token')).status).toBe(503);
    const op = await c.api.post('/api/v1/tokens').send({ vaId: c.services.accounts.list()[0]!.id, description: 't', maxUses: 1, expiresInDays: 1 });
    expect(op.status).toBe(503);
    expect(op.body.error.code).toBe('storage_failed');
    expect((await c.api.get('/api/v1/devices')).status).toBe(200);
    expect(announced).toHaveLength(1);
    expect((announced[0] as NodeJS.ErrnoException).code).toBe('EIO');
  });
});
