import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cli, envFor, serve, tempDataDir } from '../helpers/processes.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { pool } from '../../src/simulator/simulate.js';
import { TAG } from '../helpers/harness.js';

const DEVICES = 64;

describe('when the collector is killed (SIGKILL) while 64 devices are sending', () => {
  it('then after a restart every report that got a 2xx is in the database, and compliance has no drift', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    let server = await serve(dir);
    const token = JSON.parse((await cli(['token', 'create', '--description', 'crash', '--uses', String(DEVICES), '--json'], env)).stdout).secret;
    const collectorId = ((await (await request(server.url + '/device/v1/collector')).body.json()) as { collectorId: string }).collectorId;
    const devices = Array.from({ length: DEVICES }, (_, i) => new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: `CRASH${i}` }));
    await pool(devices, 16, async (d) => {
      expect((await d.register(token)).status).toBe(201);
    });

    const acked: { deviceId: string; reportId: string }[] = [];
    let sent = 0;
    let failed = 0;
    let stop = false;
    const senders = devices.map(async (d, i) => {
      for (let n = 0; !stop && n < 100_000; n++) {
        const rep = d.report(TAG, 1 + ((i + n) % 5), Math.floor(Date.now() / 1000), `r-${i}-${n}`);
        sent++;
        try {
          const res = await d.sendReport(rep);
          if (res.status === 200) acked.push({ deviceId: d.deviceId!, reportId: rep.reportId });
        } catch {
          failed++; // the connection died with the server: no 2xx, no promise
          return;
        }
      }
    });
    // Let traffic flow, then kill the server without warning mid-stream.
    while (acked.length < 2000) await new Promise((r) => setTimeout(r, 20));
    await server.stop('SIGKILL');
    stop = true;
    await Promise.all(senders);
    expect(failed).toBeGreaterThan(0); // requests were in flight when it died

    server = await serve(dir);
    const verify = await cli(['compliance', 'verify', '--json'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout).drift).toEqual([]);
    expect(await server.stop()).toBe(0);

    const db = new Database(join(dir, 'outpost.db'), { readonly: true });
    const has = db.prepare("SELECT 1 FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?");
    const missing = acked.filter((a) => !has.get(a.deviceId, a.reportId));
    const stored = (db.prepare('SELECT count(*) AS n FROM reports').get() as { n: number }).n;
    db.close();
    expect(missing).toEqual([]);
    expect(stored).toBeGreaterThanOrEqual(acked.length);
    expect(sent).toBeGreaterThan(acked.length);
  }, 120_000);
});
