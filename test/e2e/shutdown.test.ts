import Database from 'better-sqlite3';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cli, envFor, serve, settlesWithin, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { pool } from '../../src/simulator/simulate.js';
import { TAG } from '../helpers/harness.js';

const DEVICES = 24;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Load {
  dir: string;
  server: ServerProcess;
  port: number;
  acked: { deviceId: string; reportId: string }[];
  /** Every device's request loop: each request ends in a response or a connection error. */
  senders: Promise<void>;
  errors: () => number;
}

/** A collector with devices on keep-alive connections, each sending reports back to back until its connection fails. */
async function underLoad(graceSeconds: number): Promise<Load> {
  const dir = tempDataDir();
  const server = await serve(dir, { OUTPOST_SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
  const token = JSON.parse((await cli(['token', 'create', '--description', 'shutdown', '--uses', String(DEVICES), '--json'], envFor(dir))).stdout).secret;
  const collectorId = ((await (await request(server.url + '/device/v1/collector')).body.json()) as { collectorId: string }).collectorId;
  const devices = Array.from({ length: DEVICES }, (_, i) => new SimulatedDevice(server.url, collectorId, { pid: 'C9300-24T', serial: `DRAIN${i}` }));
  await pool(devices, 8, async (d) => {
    expect((await d.register(token)).status).toBe(201);
  });
  const acked: Load['acked'] = [];
  let errors = 0;
  const senders = Promise.all(
    devices.map(async (d, i) => {
      for (let n = 0; ; n++) {
        const rep = d.report(TAG, 1 + ((i + n) % 5), Math.floor(Date.now() / 1000), `r-${i}-${n}`);
        try {
          const res = await d.sendReport(rep);
          if (res.status === 200) acked.push({ deviceId: d.deviceId!, reportId: rep.reportId });
        } catch {
          errors++; // refused or closed: the collector is going away
          return;
        }
      }
    }),
  ).then(() => {});
  while (acked.length < 500) await sleep(20);
  return { dir, server, port: Number(new URL(server.url).port), acked, senders, errors: () => errors };
}

/** Whether a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** After the stop: every report that got a 200 is stored, and the counts agree with the reports. */
async function nothingAcknowledgedLost(load: Load): Promise<void> {
  const db = new Database(join(load.dir, 'outpost.db'), { readonly: true });
  const has = db.prepare("SELECT 1 FROM reports WHERE device_id = ? AND source = 'device' AND report_id = ?");
  const missing = load.acked.filter((a) => !has.get(a.deviceId, a.reportId));
  db.close();
  expect(missing).toEqual([]);
  const verify = await cli(['compliance', 'verify', '--json'], envFor(load.dir));
  expect(verify.code, verify.stderr).toBe(0);
  expect(JSON.parse(verify.stdout).drift).toEqual([]);
}

describe('when the collector gets SIGTERM while devices report on keep-alive connections', () => {
  it('then it closes their connections, refuses new ones and exits 0 long before its grace period, losing nothing acknowledged', async () => {
    const load = await underLoad(20);
    load.server.proc.kill('SIGTERM');
    // Nothing is slow here: it must not wait out the 20 s grace (or a 65 s keep-alive).
    expect(await settlesWithin(load.server.exited, 15_000, 'the collector exiting')).toBe(0);
    await settlesWithin(load.senders, 10_000, 'device requests');
    expect(load.errors()).toBe(DEVICES); // each device ended on a refused or closed connection
    expect(load.server.log()).not.toContain('were cut');
    await nothingAcknowledgedLost(load);
  });

  it('then a request still in flight at the end of the grace period is cut, and it still exits 0 with every request settled', async () => {
    const load = await underLoad(2);
    // An operator upload that never finishes: the collector has its headers (it said 100
    // Continue) and waits for a body that will not come.
    const stalled = net.connect(load.port, '127.0.0.1');
    let stalledClosed = false;
    let received = '';
    stalled.on('data', (c: Buffer) => (received += c));
    stalled.on('error', () => {});
    stalled.on('close', () => (stalledClosed = true));
    stalled.write(
      `POST /api/v1/usage/rum?vaId=Default HTTP/1.1\r\nHost: 127.0.0.1:${load.port}\r\nContent-Type: application/xml\r\n` +
        'Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n',
    );
    while (!received.includes('100 Continue')) await sleep(10);
    stalled.write('<?xml version="1.0"?><smartLicense>');
    // An export, running or done when the signal comes: it ends in a response or a closed connection.
    const exported = request(`${load.server.url}/api/v1/exchange/export`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    }).then((r) => r.body.text(), (e: Error) => e);

    load.server.proc.kill('SIGTERM');
    let refusedWhileDraining = false;
    for (let i = 0; i < 100 && !refusedWhileDraining; i++) {
      if (await refused(load.port)) refusedWhileDraining = load.server.proc.exitCode === null && !stalledClosed;
      else await sleep(20);
    }
    expect(refusedWhileDraining).toBe(true); // new connections refused while the old one still had its grace

    expect(await settlesWithin(load.server.exited, 2_000 + 10_000, 'the collector exiting')).toBe(0);
    expect(stalledClosed).toBe(true);
    expect(received).not.toMatch(/HTTP\/1\.1 [2-5]\d\d/); // cut, never answered as if it had been read
    await settlesWithin(load.senders, 10_000, 'device requests');
    await settlesWithin(exported, 10_000, 'the export request');
    expect(load.server.log()).toContain('requests still running at the end of the grace period were cut');
    await nothingAcknowledgedLost(load);
  });
});
