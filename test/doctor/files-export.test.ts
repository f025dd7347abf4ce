import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Check } from '../../src/doctor/check.js';
import { runDoctor } from '../../src/doctor/run.js';
import { startUpstream, type RunningUpstream } from '../../src/upstream/server/start.js';
import { DAY, startHarness, TAG } from '../helpers/harness.js';
import { tempDir } from '../helpers/temp.js';
import { cli } from '../helpers/processes.js';
import { enrollOver } from '../upstream/sync-server.js';

/**
 * The doctor's checks of the files a site configures besides its data folder (the config file,
 * secret files, backups), of the last export whatever way usage leaves, and of the Outpost
 * upstream's view of the collector's credentials.
 */
let site: string;
let hookKey: string;

beforeAll(async () => {
  const root = tempDir('doctor-files');
  site = join(root, 'data');
  hookKey = join(root, 'hook.key');
  writeFileSync(hookKey, 'hook-secret\n', { mode: 0o600 });
  const h = await startHarness({ config: { dataDir: site } });
  try {
    const d = await h.registered('FILES0');
    expect((await d.sendReport(d.report(TAG, 2))).status).toBe(200);
    await h.api.post('/api/v1/notifications/sinks').send({ kind: 'webhook', name: 'hook', webhook: { url: 'http://127.0.0.1:1/outpost', hmacKeyFile: hookKey } }).expect(201);
    h.services.time.check();
  } finally {
    await h.close();
  }
});

let up: RunningUpstream[] = [];
afterEach(async () => {
  for (const u of up) await u.stop(0);
  up = [];
});

function copySite(): string {
  const dir = join(tempDir('doctor-files-copy'), 'data');
  cpSync(site, dir, { recursive: true });
  chmodSync(dir, 0o700);
  return dir;
}

const configFor = (dataDir: string, extra: Record<string, unknown> = {}) => loadConfig({ env: {}, overrides: { dataDir, ...extra } as never });
const named = (checks: Check[], name: string) => checks.filter((c) => c.name === name);
const secretFile = (dir: string, name: string, mode: number) => {
  const f = join(dir, name);
  writeFileSync(f, 'secret\n', { mode });
  chmodSync(f, mode);
  return f;
};

describe('outpost doctor: configured files', () => {
  it('fails a config file others may change, and passes it at 0640, run as the real command', async () => {
    const dir = copySite();
    const file = join(dir, '..', 'config.json');
    writeFileSync(file, '{}\n');
    chmodSync(file, 0o666);
    const bad = await cli(['doctor', '--data-dir', dir, '--config', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^fail +config file mode +${file} may be changed by its group or others \\(mode 0666\\)`, 'm'));
    expect(bad.stdout).toContain(`fix: chmod 640 ${file}`);
    chmodSync(file, 0o640);
    const good = await cli(['doctor', '--data-dir', dir], { OUTPOST_CONFIG: file });
    expect(good.stdout).toMatch(/^ok +config file mode/m);
  });

  it('fails each secret file its group or others may read (HTTPS key, proxy and SMTP passwords, webhook secrets), and one that is missing', async () => {
    const dir = copySite();
    const etc = tempDir('doctor-etc');
    const extra = {
      https: { certFile: join(etc, 'cert.pem'), keyFile: secretFile(etc, 'key.pem', 0o644) },
      exchange: { connection: { proxyPasswordFile: secretFile(etc, 'proxy-password', 0o600) } },
      notifications: { email: { passwordFile: join(etc, 'no-such-smtp-password') } },
    };
    chmodSync(hookKey, 0o640);
    try {
      const checks = await runDoctor(configFor(dir, extra));
      const modes = named(checks, 'secret file mode');
      expect(modes.map((c) => c.message)).toEqual([
        `the private key (https.keyFile) ${join(etc, 'key.pem')} may be read by its group or others (mode 0644): it is not used; run chmod 600 ${join(etc, 'key.pem')}`,
        `the webhook secret file (sink hook) ${hookKey} may be read by its group or others (mode 0640): it is not used; run chmod 600 ${hookKey}`,
      ]);
      expect(modes.every((c) => c.status === 'fail' && c.fix!.startsWith('chmod 600 '))).toBe(true);
      const missing = named(checks, 'secret file');
      expect(missing).toHaveLength(1);
      expect(missing[0]!.message).toContain(`the SMTP password file (notifications.email.passwordFile) ${join(etc, 'no-such-smtp-password')} cannot be read (ENOENT)`);
    } finally {
      chmodSync(hookKey, 0o600);
    }
    chmodSync(join(etc, 'key.pem'), 0o600);
    const fixed = await runDoctor(configFor(dir, { ...extra, notifications: { email: { passwordFile: secretFile(etc, 'smtp-password', 0o600) } } }));
    expect(named(fixed, 'secret files')).toEqual([expect.objectContaining({ status: 'ok', message: expect.stringContaining('4 secret file(s) readable by their owner only') })]);
  });

  it('fails a backup its group or others may read: one made with --with-keys holds the identity key', async () => {
    const dir = copySite();
    const backups = join(tempDir('doctor-backups'), 'backups');
    mkdirSync(backups);
    secretFile(backups, 'outpost-backup-20261101T021500Z.db', 0o600);
    const open = secretFile(backups, 'pre-upgrade.db', 0o644);
    const checks = await runDoctor(configFor(dir, { backup: { dir: backups } }));
    const c = named(checks, 'backup file mode');
    expect(c).toHaveLength(1);
    expect(c[0]!.status).toBe('fail');
    expect(c[0]!.message).toContain(`1 file(s) in ${backups} may be read by their group or others: ${open} (mode 0644)`);
    expect(c[0]!.fix).toContain(`chmod 600 ${backups}/*`);
    chmodSync(open, 0o600);
    expect(named(await runDoctor(configFor(dir, { backup: { dir: backups } })), 'backup file mode')[0]!.status).toBe('ok');
  });
});

describe('outpost doctor: the last export', () => {
  const lastExport = async (dir: string, now = Date.now()) => named(await runDoctor(configFor(dir), { now }), 'last export')[0]!;
  const setMeta = (dir: string, key: string, value: string) => {
    const db = new Database(join(dir, 'outpost.db'));
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
    db.close();
  };

  it('warns when nothing was ever exported and a report has waited longer than the reporting interval', async () => {
    const dir = copySite();
    expect(await lastExport(dir)).toMatchObject({ status: 'ok', message: 'no usage exported yet' });
    const later = await lastExport(dir, Date.now() + 40 * DAY);
    expect(later.status).toBe('warn');
    expect(later.message).toMatch(/^no usage was ever exported, and reports have waited 40 days, over the reporting interval \(\d+ days\)$/);
    expect(later.fix).toContain('outpost export');
  });

  it("counts a Cisco cloud sync and a portal upload as exports", async () => {
    const cloud = copySite();
    setMeta(cloud, 'cssm.last_success_at', String(Date.now() - 2 * DAY));
    expect(await lastExport(cloud)).toMatchObject({ status: 'ok', message: '2 days ago' });

    const portal = copySite();
    const db = new Database(join(portal, 'outpost.db'));
    db.prepare('INSERT INTO portal_uploads (id, file, time_tag, reports, created_at) VALUES (?, ?, ?, ?, ?)').run('pup_doctor', '/nowhere/portal.tar.gz', 'tt', 1, Date.now() - 3 * DAY);
    db.close();
    expect(await lastExport(portal)).toMatchObject({ status: 'ok', message: '3 days ago' });
  });
});

describe("outpost doctor: the Outpost upstream's view of the collector", () => {
  async function upstream(name: string): Promise<RunningUpstream> {
    const u = await startUpstream(loadConfig({ env: {}, overrides: { upstream: { dataDir: join(tempDir(name), 'upstream'), port: 0, host: '127.0.0.1' }, shutdown: { graceSeconds: 1 } } }), { logger: createLogger('error', true) });
    up.push(u);
    return u;
  }

  it('passes a collector the upstream accepts, and fails one it does not know', async () => {
    const known = await upstream('doctor-up-a');
    const dataDir = join(tempDir('doctor-connected'), 'data');
    const h = await startHarness({ config: { dataDir, exchange: { mode: 'connected', connection: { url: known.url } } } });
    try {
      await enrollOver(h, known);
    } finally {
      await h.close();
    }
    const connectedTo = (url: string) => configFor(dataDir, { exchange: { mode: 'connected', upstream: { kind: 'outpost' }, connection: { url } } });
    const good = named(await runDoctor(connectedTo(known.url), { timeoutMs: 5000 }), 'upstream')[0]!;
    expect(good.status).toBe('ok');
    expect(good.message).toContain("accepts this collector's signed requests");

    // Another upstream (one restored from before the enrollment, or the wrong one) answers its hello, but not for this collector.
    const stranger = await upstream('doctor-up-b');
    const bad = named(await runDoctor(connectedTo(stranger.url), { timeoutMs: 5000 }), 'upstream')[0]!;
    expect(bad.status).toBe('fail');
    expect(bad.message).toContain(`the upstream at ${stranger.url} does not know this collector with its current key`);
    expect(bad.fix).toContain('outpost sync enroll');
  });
});
