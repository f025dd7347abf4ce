import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { fdatasync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FileSync } from '../../src/store/wal-sync.js';
import { SimulatedDevice } from '../../src/simulator/device-client.js';
import { TAG } from '../helpers/harness.js';
import winston from 'winston';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildServices, databaseFile, socketFile, startCollector, type RunningCollector } from '../../src/main.js';
import { untilStopped } from '../../src/cli/commands/serve.js';
import { openStore } from '../../src/store/open.js';
import { CLOSE_MARGIN_MS, EXIT } from '../../src/lifecycle.js';
import { createLogger } from '../../src/shared/logger.js';
import { cli, envFor, serve, tempDataDir } from '../helpers/processes.js';
import { tempDir } from '../helpers/temp.js';

/** A loopback port held by this test process, as another program would hold it. */
async function occupiedPort(): Promise<{ port: number; free: () => Promise<void> }> {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  return { port: (blocker.address() as net.AddressInfo).port, free: () => new Promise((r) => blocker.close(() => r())) };
}

/** Whether a TCP connection to the port is refused (nothing listens there). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

function siteConfig(port = 0): Config {
  const dir = tempDir('life');
  return loadConfig({
    env: {},
    overrides: { dataDir: join(dir, 'data'), http: { host: '127.0.0.1', port }, exchange: { bundleDir: join(dir, 'bundles') }, upstream: { dataDir: join(dir, 'upstream') } },
  });
}

/** A logger whose entries the test reads. */
function capturingLogger() {
  const entries: { level: string; message: string; error?: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      entries.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const logger = winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
  return { logger, entries };
}

/** True when this process can claim the store: no one holds its lock. */
function lockIsFree(config: Config): boolean {
  const db = openStore(databaseFile(config));
  db.close();
  return true;
}

describe('a start that fails half way', () => {
  it('when the port is taken, then `outpost serve` exits non-zero naming the port, leaves no socket, and starts once the port is free', async () => {
    const dir = tempDataDir();
    const blocker = await occupiedPort();
    const env = { ...envFor(dir), OUTPOST_HTTP_HOST: '127.0.0.1', OUTPOST_HTTP_PORT: String(blocker.port) };
    const failed = await cli(['serve'], env, 15_000);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`127.0.0.1:${blocker.port}`);
    expect(failed.stderr).toContain('EADDRINUSE');
    expect(existsSync(join(dir, 'outpost.sock'))).toBe(false);

    await blocker.free();
    const server = await serve(dir, { OUTPOST_HTTP_PORT: String(blocker.port) });
    expect(server.url).toBe(`http://127.0.0.1:${blocker.port}`);
    expect(await server.stop()).toBe(0);
    expect(existsSync(join(dir, 'outpost.sock'))).toBe(false);
  });

  it('when the first alert evaluation throws after both listeners are up, then start rejects naming it and releases the port, the socket and the store lock', async () => {
    const { port, free } = await occupiedPort();
    await free();
    const config = siteConfig(port);
    const seed = buildServices(config, { logger: createLogger('error', true) });
    // A damaged stored policy: evaluating the alerts reads it and throws.
    seed.db.prepare("INSERT INTO meta (key, value) VALUES ('policy', '{damaged') ON CONFLICT (key) DO UPDATE SET value = excluded.value").run();
    seed.db.close();

    await expect(startCollector(config, { logger: createLogger('error', true) })).rejects.toThrow(/could not start: the first alert evaluation: .*JSON/);
    expect(existsSync(socketFile(config))).toBe(false);
    expect(await refused(port)).toBe(true);
    expect(lockIsFree(config)).toBe(true);

    const repair = openStore(databaseFile(config));
    repair.prepare("DELETE FROM meta WHERE key = 'policy'").run();
    repair.close();
    const running = await startCollector(config, { logger: createLogger('error', true) });
    expect(running.port).toBe(port);
    await running.stop();
    expect(await running.exitCode).toBe(0);
  });
});

describe('services.fatal on a running collector', () => {
  it('then the cause is logged once at error, the collector stops and closes the store, and serve would exit 1', async () => {
    const config = siteConfig();
    const { logger, entries } = capturingLogger();
    const running = await startCollector(config, { logger });
    const code = untilStopped(() => Promise.resolve(running), new EventEmitter());

    running.services.fatal(new Error('fdatasync failed: EIO'));
    running.services.fatal(new Error('a second failure while stopping'));
    expect(await code).toBe(1);

    const errors = entries.filter((e) => e.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error).toBe('fdatasync failed: EIO');
    expect(running.services.db.open).toBe(false);
    expect(existsSync(running.socketPath)).toBe(false);
    expect(await refused(running.port)).toBe(true);
    expect(lockIsFree(config)).toBe(true);
  });

  it('when the WAL flush of a device report fails on a running collector, then that report gets 503, the failure is fatal, and serve would exit 1', async () => {
    const config = siteConfig();
    const { logger, entries } = capturingLogger();
    let failing = false;
    const walSync: FileSync = (fd, done) => (failing ? done(Object.assign(new Error('input/output error'), { code: 'EIO' })) : fdatasync(fd, done));
    const running = await startCollector(config, { logger, walSync });
    const code = untilStopped(() => Promise.resolve(running), new EventEmitter());
    const token = running.services.tokens.create({ vaId: running.services.accounts.list()[0]!.id, description: 't', maxUses: 1, expiresInDays: 1 }, 'test');
    const d = new SimulatedDevice(`http://127.0.0.1:${running.port}`, running.services.identity.collectorId, { pid: 'C9300-24T', serial: 'EIO1' });
    expect((await d.register(token.secret)).status).toBe(201);
    failing = true;
    const r = await d.sendReport(d.report(TAG, 1));
    expect([r.status, r.body.error.code]).toEqual([503, 'storage_unavailable']);
    expect(await code).toBe(1);
    const errors = entries.filter((e) => e.level === 'error');
    expect(errors).toEqual([expect.objectContaining({ error: 'input/output error', message: expect.stringContaining('fatal error') })]);
    expect(lockIsFree(config)).toBe(true);
  });

  it('and a signal during the start stops the collector once it is up, with exit code 0', async () => {
    const config = siteConfig();
    const signals = new EventEmitter();
    let running: RunningCollector | undefined;
    const code = untilStopped(async () => (running = await startCollector(config, { logger: createLogger('error', true) })), signals);
    signals.emit('SIGTERM'); // during the start: heard, and acted on once the collector is up
    expect(await code).toBe(0);
    expect(running!.services.db.open).toBe(false);
    expect(lockIsFree(config)).toBe(true);
  });

  it('and without a fatal error, SIGTERM stops it with exit code 0', async () => {
    const config = siteConfig();
    const running = await startCollector(config, { logger: createLogger('error', true) });
    const signals = new EventEmitter();
    const code = untilStopped(() => Promise.resolve(running), signals);
    await new Promise((r) => setImmediate(r));
    signals.emit('SIGTERM');
    expect(await code).toBe(0);
    expect(running.services.db.open).toBe(false);
    expect(lockIsFree(config)).toBe(true);
  });
});

describe.each(['outpost.service', 'outpost-upstream.service'])('the systemd unit %s', (file) => {
  const unit = readFileSync(fileURLToPath(new URL(`../../systemd/${file}`, import.meta.url)), 'utf8');
  const setting = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];

  it('then it restarts the collector after a non-zero exit, but not after a configuration error', () => {
    expect(setting('Restart')).toBe('on-failure');
    expect(setting('RestartPreventExitStatus')).toBe(String(EXIT.config));
    expect(EXIT.failed).not.toBe(0);
  });

  it("then the default grace and the time to close fit inside its stop timeout", () => {
    const timeoutMs = Number(/^(\d+)s$/.exec(setting('TimeoutStopSec') ?? '')?.[1]) * 1000;
    expect(setting('KillSignal')).toBe('SIGTERM');
    expect(loadConfig({ env: {} }).shutdown.graceSeconds * 1000 + CLOSE_MARGIN_MS).toBeLessThan(timeoutMs);
  });
});
