import Database from 'better-sqlite3';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cli, envFor, serve, tempDataDir, type ServerProcess } from '../helpers/processes.js';
import { startFakeCssmProcess, type FakeCssmProcess } from '../helpers/fake-cssm-process.js';
import { FIXTURE_TAG, reportKey } from '../helpers/fake-cssm.js';
import { startFakeIosXe, type FakeDevice, type FakeIosXe } from '../helpers/fake-iosxe.js';
import { makeTestCa } from '../helpers/test-ca.js';

/**
 * Cisco's cloud as the upstream, end to end through real processes: IOS-XE devices (in this
 * process, HTTPS under a test CA) → `outpost serve` (connected, upstream kind cisco) → the fake
 * CSSM (its own HTTPS process) and back: ACKs to each device, positions into compliance. The
 * fake only learns a report once its poll completes ('after-complete'), so any report sent twice
 * before then, as a client that lost a poll id would, shows in its duplicates(). The collector
 * logs at debug level throughout, and its output and files are searched for the client secret.
 */
describe("Cisco's cloud as the upstream, against real processes", () => {
  const DEVICES = 2;
  // Slow enough that a sync is still polling when the collector is killed, quick enough to finish soon after.
  const POLLS_BEFORE_COMPLETE = 3;
  const dir = tempDataDir();
  const site = join(dir, '..');
  let env: Record<string, string>;
  let ios: FakeIosXe;
  let cssm: FakeCssmProcess;
  let collector: ServerProcess;
  /** Every collector process of this file: what they printed is searched for the secret. */
  const started: ServerProcess[] = [];

  const run = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await cli(args, { ...env, ...extra }, 60_000);
    expect(r.code, `outpost ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const json = async (args: string[], extra: Record<string, string> = {}) => JSON.parse(await run([...args, '--json'], extra));
  const api = async (path: string, method: 'GET' | 'POST' = 'GET', body?: unknown) => {
    const r = await request(`${collector.url}/api/v1${path}`, {
      method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await r.body.text();
    return { status: r.statusCode, text, body: JSON.parse(text) };
  };
  const start = async () => {
    collector = await serve(dir, { OUTPOST_CONFIG: join(site, 'outpost.json') });
    started.push(collector);
  };
  const look = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(join(dir, 'outpost.db'), { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waitFor = async (what: string, ok: () => Promise<boolean> | boolean, ms = 20_000) => {
    for (const until = Date.now() + ms; !(await ok()); await sleep(50)) if (Date.now() > until) throw new Error(`${what}: not after ${ms} ms`);
  };

  /** The (UDI, report id) of every closed report of the devices: what the cloud must hold, each once. */
  const closedKeys = () => ios.devices.flatMap((d) => d.reports.filter((r) => r.closed).map((r) => reportKey(d.udi, String(r.reportId))));
  /** What one ACK a device received says: the UDI and the report ids it covers. */
  const ackData = (text: string) => {
    const m = /<smartLicenseRumAck><data>([\s\S]*)<\/data><\/smartLicenseRumAck>/.exec(text);
    expect(m, text).not.toBeNull();
    const unescaped = m![1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    return JSON.parse(unescaped) as { udi: { udi_pid: string; udi_serial_number: string }; report_ids: string[] };
  };
  /** Each device received only ACKs naming itself, and, all together, one ACK per report it closed. */
  const eachDeviceGotItsOwnAcks = (d: FakeDevice) => {
    const acks = d.imports.map((i) => ackData(i.text));
    for (const a of acks) expect(a.udi).toEqual({ udi_pid: d.udi.pid, udi_serial_number: d.udi.serial });
    const covered = acks.flatMap((a) => a.report_ids).sort();
    expect(covered).toEqual(d.reports.filter((r) => r.closed).map((r) => String(r.reportId)).sort());
  };

  beforeAll(async () => {
    const iosCa = makeTestCa();
    [ios, cssm] = await Promise.all([
      // Measured in the last days: a device whose latest report is older is stale, and its usage counts for nothing.
      startFakeIosXe({ count: DEVICES, ca: iosCa, startTime: Math.floor(Date.now() / 1000) - 10 * 86_400 }),
      startFakeCssmProcess({ duplicateCheck: 'after-complete', pollsBeforeComplete: POLLS_BEFORE_COMPLETE }),
    ]);
    env = { ...envFor(dir), OUTPOST_CONFIG: join(site, 'outpost.json') };
    const config = {
      log: { level: 'debug' },
      exchange: { mode: 'connected', upstream: { kind: 'cisco' }, syncCron: '0 0 1 1 *' },
      cisco: {
        caFile: iosCa.caFile, pollCron: '0 0 1 1 *', timeoutSeconds: 5, retries: 0,
        cloud: {
          tokenUrl: cssm.tokenUrl, apiUrl: `${cssm.url}/smart-accounts-and-licensing`, clientId: cssm.clientId, domain: cssm.domain,
          virtualAccounts: { Default: 'DEFAULT' }, licenseTags: {}, caFile: cssm.ca.caFile, timeoutSeconds: 10, pollSeconds: 1, maxPollMinutes: 1,
        },
      },
    };
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(site, 'outpost.json'), JSON.stringify(config, null, 2));
    await start();
  }, 60_000);

  afterAll(async () => {
    await collector?.stop();
    await cssm?.stop();
    await ios?.stop();
  });

  it('when devices are polled and the collector syncs, then the cloud holds each report once, each device receives its own ACK, and compliance shows the account positions', async () => {
    const secretFile = join(site, 'cssm.secret');
    writeFileSync(secretFile, `${cssm.clientSecret}\n`);
    chmodSync(secretFile, 0o600);
    expect(await run(['cisco', 'cloud', 'credentials', '--secret-file', secretFile])).toContain('the client secret is stored (sealed)');

    const accounts = (await api('/cisco/accounts')).body;
    expect(accounts.problem).toBeNull();
    expect(accounts.resolved.mappings).toMatchObject([{ vaName: 'Default', cssm: { name: 'DEFAULT' }, problem: null }]);
    expect(accounts.resolved.unmappedCssm).toEqual(['Campus']);
    expect(await run(['cisco', 'accounts'])).toContain('CSSM virtual accounts no local VA maps to: Campus');

    // One device by the command (its password in a 0600 file), the others by the API.
    const [first, ...others] = ios.devices;
    const password = join(site, 'sw-0.pass');
    writeFileSync(password, first!.password);
    chmodSync(password, 0o600);
    await run(['cisco', 'devices', 'add', 'sw-0', '--host', first!.host, '--port', String(first!.port), '--username', first!.username, '--password-file', password]);
    for (const d of others) {
      const r = await api('/cisco/devices', 'POST', { name: `sw-${d.index}`, host: d.host, port: d.port, username: d.username, password: d.password, vaId: 'Default' });
      expect(r.status, r.text).toBe(201);
    }
    const polled = await json(['cisco', 'poll']);
    expect(polled.map((p: { ok: boolean; accepted: number }) => [p.ok, p.accepted])).toEqual(ios.devices.map(() => [true, 2]));
    const sent = closedKeys();
    expect(sent).toHaveLength(DEVICES * 2);

    const result = await json(['sync', 'now']);
    expect(result, JSON.stringify(result)).toMatchObject({
      status: 'synced', error: null,
      usage: { uploads: DEVICES, reportsUploaded: sent.length, completed: DEVICES, acknowledged: sent.length, alreadyUploaded: 0, stillPolling: 0, failed: [], unmapped: [] },
      positions: { virtualAccounts: 1, positions: 2, untagged: 1 },
    });

    // The cloud: one upload per device, from that device, each (UDI, report id) once.
    const uploads = await cssm.uploads();
    expect(uploads.map((u) => `${u.udi.pid}/${u.udi.serial}`).sort()).toEqual(ios.devices.map((d) => `${d.udi.pid}/${d.udi.serial}`).sort());
    expect(uploads.every((u) => u.va === 'DEFAULT')).toBe(true);
    expect(uploads.flatMap((u) => u.reportIds.map((id) => reportKey(u.udi, id))).sort()).toEqual([...sent].sort());
    expect(await cssm.duplicates()).toEqual([]);
    expect(await cssm.refusedDuplicates()).toEqual([]);

    // Each device: exactly one ACK, its own, covering the reports it closed.
    for (const d of ios.devices) {
      expect(d.imports).toHaveLength(1);
      eachDeviceGotItsOwnAcks(d);
    }

    // Positions: the fake's licenses of DEFAULT, one tagged with the fixture's tag, beside Outpost's own count.
    const positions = (await api('/cisco/positions')).body.items;
    const tagged = positions.find((p: { tag: string | null }) => p.tag === FIXTURE_TAG);
    const localInUse = look((db) => db.prepare('SELECT in_use FROM va_usage WHERE tag = ?').pluck().get(FIXTURE_TAG) as number);
    expect(localInUse).toBeGreaterThan(0);
    expect(tagged).toMatchObject({ vaName: 'Default', cssmVa: 'DEFAULT', license: 'DNA Network Stack', quantity: 100, cssmInUse: 40, localInUse, difference: 40 - localInUse });
    expect(positions.find((p: { tag: string | null }) => p.tag === null)).toMatchObject({ license: 'C9800 Wireless Advantage', localInUse: null });
    const table = await run(['cisco', 'positions']);
    expect(table).toContain('DNA Network Stack');
    expect(table).toContain('(no tag: set cisco.cloud.licenseTags)');
    const compliance = (await api('/virtual-accounts/Default/compliance')).body;
    expect(compliance.tags.find((t: { tag: string }) => t.tag === FIXTURE_TAG)).toMatchObject({ owned: 100, inUse: localInUse });

    // Nothing waits: not for Cisco's cloud, not for any other destination.
    const status = (await api('/exchange/status')).body;
    expect(status).toMatchObject({ upstream: { kind: 'cisco' }, waiting: { reports: 0 }, lastError: null, alreadyUploaded: 0 });
    expect(status.uploads).toMatchObject({ polling: { uploads: 0 }, complete: { uploads: DEVICES }, failed: { uploads: 0 } });
    expect(status.destinations.map((d: { waiting: number }) => d.waiting)).toEqual(status.destinations.map(() => 0));
    expect(await run(['sync', 'status'])).toContain("waiting for Cisco's ACK: 0 reports");
  }, 60_000);

  it('when the collector is killed while Cisco processes an upload and started again, then the next sync polls what was sent, sends nothing twice and delivers the ACK', async () => {
    // Usage goes on: each device measures again, and a poll brings one new closed report from each.
    for (const d of ios.devices) ios.grow(d.index, 1);
    const polled = await json(['cisco', 'poll']);
    expect(polled.map((p: { ok: boolean; accepted: number }) => [p.ok, p.accepted])).toEqual(ios.devices.map(() => [true, 1]));
    const before = (await cssm.uploads()).length;
    const importsBefore = ios.devices.map((d) => d.imports.length);

    // The sync starts in the background; once the cloud has taken each device's upload and the collector has kept its poll id, the collector dies.
    expect((await api('/exchange/sync', 'POST', {})).body).toEqual({ started: true });
    await waitFor('the uploads reaching the cloud', async () => (await cssm.uploads()).length === before + DEVICES);
    await waitFor('the poll ids kept', () => look((db) => db.prepare("SELECT count(*) FROM cssm_uploads WHERE state = 'polling' AND poll_id IS NOT NULL").pluck().get() as number) === DEVICES);
    collector.proc.kill('SIGKILL');
    await collector.exited;
    // The kill came before Cisco answered: nothing of the second round was acknowledged or delivered.
    expect(look((db) => db.prepare("SELECT count(*) FROM report_pending WHERE destination = 'cssm'").pluck().get())).toBe(DEVICES);
    expect(ios.devices.map((d) => d.imports.length)).toEqual(importsBefore);

    await start();
    expect((await api('/exchange/status')).body.uploads.polling).toEqual({ uploads: DEVICES, reports: DEVICES });
    // The secret set again by the other route (the variable), as an operator rotating it would.
    await run(['cisco', 'cloud', 'credentials'], { OUTPOST_CSSM_CLIENT_SECRET: cssm.clientSecret });
    const result = await json(['sync', 'now']);
    expect(result, JSON.stringify(result)).toMatchObject({
      status: 'synced', error: null,
      usage: { uploads: 0, reportsUploaded: 0, completed: DEVICES, acknowledged: DEVICES, alreadyUploaded: 0, stillPolling: 0, failed: [] },
    });

    const uploads = await cssm.uploads();
    expect(uploads).toHaveLength(before + DEVICES);
    expect(await cssm.duplicates()).toEqual([]);
    expect(await cssm.refusedDuplicates()).toEqual([]);
    expect(uploads.flatMap((u) => u.reportIds.map((id) => reportKey(u.udi, id))).sort()).toEqual(closedKeys().sort());
    // Each upload answered once, each report acknowledged, each ACK delivered; each device one more ACK, its own.
    const answered = look((db) => db.prepare("SELECT details FROM events WHERE type = 'cisco.cloud_ack_received'").pluck().all() as string[]).map((d) => JSON.parse(d).pollId);
    expect(answered.sort()).toEqual(uploads.map((u) => u.pollId).sort());
    expect(look((db) => db.prepare("SELECT count(*) FROM report_acks WHERE destination = 'cssm'").pluck().get())).toBe(closedKeys().length);
    expect(look((db) => db.prepare("SELECT count(*) FROM ack_deliveries WHERE destination = 'cssm' AND delivered_at IS NOT NULL").pluck().get())).toBe(2 * DEVICES);
    for (const d of ios.devices) {
      expect(d.imports).toHaveLength(importsBefore[d.index]! + 1);
      eachDeviceGotItsOwnAcks(d);
    }
    const status = (await api('/exchange/status')).body;
    expect(status).toMatchObject({ waiting: { reports: 0 }, lastError: null });
    expect(status.uploads).toMatchObject({ polling: { uploads: 0 }, complete: { uploads: 2 * DEVICES }, failed: { uploads: 0 } });
  }, 60_000);

  it('when all of that ran at debug level, then the client secret is in no log, no file of the data folder, no answer, and is sealed in the store', async () => {
    const secret = cssm.clientSecret;
    const everything = started.map((p) => p.log()).join('\n');
    // The search is over a log at debug level (the config above) that holds every operator request, not a quiet one.
    expect(everything).toContain('"message":"operator request"');
    expect(everything).not.toContain(secret);

    const files = (d: string): string[] =>
      readdirSync(d).flatMap((n) => {
        const p = join(d, n);
        const s = statSync(p);
        return s.isDirectory() ? files(p) : s.isFile() ? [p] : [];
      });
    const searched = files(dir).filter((f) => !/^outpost\.db(-wal|-shm)?$/.test(relative(dir, f)) && !relative(dir, f).startsWith('keys'));
    for (const f of searched) expect(readFileSync(f).includes(secret), f).toBe(false);

    for (const path of ['/exchange/status', '/cisco/accounts', '/cisco/positions', '/events?limit=500']) {
      const r = await api(path);
      expect(r.status, `${path}: ${r.text}`).toBe(200);
      expect(r.text, path).not.toContain(secret);
    }
    const sealed = look((db) => db.prepare("SELECT value FROM meta WHERE key = 'cssm.client_secret'").pluck().get() as string);
    expect(sealed).toMatch(/^v1:/);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(Buffer.from(secret).toString('base64'));
  }, 30_000);
});
