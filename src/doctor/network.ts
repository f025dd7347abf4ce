import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { Config } from '../config/schema.js';
import type { Db } from '../store/open.js';
import { UpstreamClient } from '../sync/http-client.js';
import { TransportError, type TransportErrorCode } from '../sync/transport-error.js';
import { SecretBox } from '../cisco/secrets.js';
import { fingerprint, privateKeyObject, publicKeyFromSeed } from '../shared/ed25519.js';
import { SYNC_BASE, type RequestSigner } from '../sync/protocol.js';
import { fail, ok, warn, type Check } from './check.js';

export interface NetworkOptions {
  /** Bound of each connection attempt: the doctor answers in seconds even when everything is down. */
  timeoutMs: number;
  /** Devices tried at once. */
  concurrency: number;
  /** The time a signed request carries (the host's clock unless a test sets it). */
  now?: number;
}

/** Never held by an upstream: the probe's answer says who the upstream takes the collector for, and nothing else. */
const PROBE_BUNDLE = 'bun_0doctorprobe';

/** The collector's signing key as the sync uses it, read without creating one (the doctor changes nothing). */
function readSigner(dataDir: string): RequestSigner | null {
  const keys = join(dataDir, 'keys');
  try {
    const seed = Buffer.from(readFileSync(join(keys, 'collector.key'), 'utf8').trim(), 'base64');
    if (seed.length !== 32) return null;
    const { collectorId } = JSON.parse(readFileSync(join(keys, 'collector.json'), 'utf8')) as { collectorId?: unknown };
    if (typeof collectorId !== 'string') return null;
    return { collectorId, keyId: fingerprint(publicKeyFromSeed(seed)), privateKey: privateKeyObject(seed) };
  } catch {
    return null;
  }
}

/**
 * A signed fetch of the answer to a bundle no collector ever sent: the upstream checks the
 * signature and the collector's key first (403 unknown_collector, 401 bad_signature or
 * bad_date), then looks the bundle up and answers 404 unknown_bundle. It only reads, so it may
 * be made at any time, and a 404 proves the upstream knows this collector and its current key.
 */
async function credentialsCheck(client: UpstreamClient, signer: RequestSigner, url: string, now: number): Promise<Check> {
  // A folder of its own (mode 0700): a fixed name in the shared temp folder could be a link planted by another user.
  const dir = mkdtempSync(join(tmpdir(), 'outpost-doctor-'));
  const toFile = join(dir, 'probe.bundle');
  try {
    const r = await client.getSigned(`${SYNC_BASE}/usage/${PROBE_BUNDLE}/response`, signer, now, { toFile, maxBytes: 1024 * 1024, wait: 0 });
    const code = (r.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error?.code;
    const said = String((r.json as { error?: { message?: unknown } } | undefined)?.error?.message ?? '').slice(0, 300);
    if (r.status === 404 && code === 'unknown_bundle') return ok('upstream', `the upstream at ${url} answers and accepts this collector's signed requests (${signer.collectorId}, key ${signer.keyId})`);
    if (code === 'unknown_collector') {
      return fail('upstream', `the upstream at ${url} does not know this collector with its current key (${signer.collectorId}, key ${signer.keyId}): it was never accepted there, was removed, or the key was rotated without the upstream hearing of it`, "ask the upstream's operator about this collector (outpost upstream status on its host); enroll again (outpost sync enroll), or, after a key rotation, carry its statement from the outbox to the upstream (outpost upstream collector rotate)");
    }
    if (code === 'bad_date') return fail('upstream', `the upstream at ${url} refuses this collector's signed requests: ${said}`, 'set the clock right on this host (or the upstream\'s): enable NTP, timedatectl set-ntp true');
    return fail('upstream', `the upstream at ${url} refuses this collector's signed requests (${r.status}${typeof code === 'string' ? ` ${code}` : ''}): ${said}`, "ask the upstream's operator to check the collector's key; enroll again if it was replaced (outpost sync enroll)");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const reason = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  return err.cause?.code ?? err.code ?? err.message ?? String(e);
};

function agentFor(caFile: string, timeoutMs: number): Agent {
  const ca = caFile ? readFileSync(caFile) : undefined;
  return new Agent({ connect: { timeout: timeoutMs, ...(ca ? { ca } : {}) }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}

const UPSTREAM_FIX: Record<TransportErrorCode, string> = {
  config: 'correct exchange.connection as the message says',
  unreachable: 'check that the upstream runs (outpost upstream serve), the URL, the firewall and exchange.connection.proxyUrl',
  timeout: "check the network path to the upstream (and the proxy's), and that the upstream is not overloaded",
  tls: "check exchange.connection.caFile and pinSha256 against the upstream's certificate (outpost sync status shows the sync's view)",
  proxy: 'check exchange.connection.proxyUrl, proxyUsername and proxyPasswordFile with the proxy\'s administrator',
  cut: 'try again; if it persists, check the proxy or firewall between the collector and the upstream',
  http: "check the upstream's own log and status (outpost upstream status on its host), and that exchange.connection.url names it",
  not_outpost: 'check that exchange.connection.url names an Outpost upstream, and that no proxy or portal answers in its place',
  too_large: 'check that exchange.connection.url names an Outpost upstream',
};

/** Reaches the upstream of a connected site the way the sync does first: its hello, or Cisco's token endpoint. */
export async function upstreamChecks(db: Db | undefined, config: Config, dataDir: string, o: NetworkOptions): Promise<Check[]> {
  const x = config.exchange;
  if (x.mode !== 'connected') return [ok('upstream', 'disconnected mode: usage travels as bundles, there is no upstream to reach')];
  if (x.upstream.kind === 'outpost') {
    const url = x.connection.url;
    if (!url) return [fail('upstream', 'connected mode, but exchange.connection.url is empty', 'set exchange.connection.url (OUTPOST_EXCHANGE_CONNECTION_URL) to the upstream, e.g. https://upstream.example:8183')];
    // The sync's own client: the same CA, pin, proxy and messages, so what the doctor says of the
    // connection is what the next sync will meet; only its waits are bounded by the doctor's.
    const s = Math.max(1, Math.ceil(o.timeoutMs / 1000));
    const c = x.connection;
    let client: UpstreamClient | undefined;
    try {
      client = UpstreamClient.fromConfig({
        ...c,
        connectTimeoutSeconds: Math.min(c.connectTimeoutSeconds, s),
        headersTimeoutSeconds: Math.min(c.headersTimeoutSeconds, s),
        bodyTimeoutSeconds: Math.min(c.bodyTimeoutSeconds, s),
      });
      await client.hello();
      const enrolled = db && db.prepare("SELECT 1 FROM upstream_keys WHERE status = 'active' LIMIT 1").get();
      if (db && !enrolled) return [warn('upstream', `the upstream at ${url} answers, but this collector is not enrolled with it`, 'outpost sync enroll, then have the upstream operator accept it')];
      const signer = readSigner(dataDir);
      if (!signer) return [ok('upstream', `the upstream at ${url} answers; credentials not checked (no collector key in ${join(dataDir, 'keys')})`)];
      return [await credentialsCheck(client, signer, url, o.now ?? Date.now())];
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      return [fail('upstream', `the upstream at ${url} ${e.code === 'unreachable' ? `cannot be reached (${reason(e)})` : 'does not answer the sync'}: ${e.message}`, UPSTREAM_FIX[e.code])];
    } finally {
      await client?.close();
    }
  }
  // Cisco's cloud: a token request with the stored client credentials proves both the path and the secret.
  const cloud = config.cisco.cloud;
  if (!cloud.clientId) return [fail('upstream', "Cisco's cloud is the upstream, but cisco.cloud.clientId is empty", 'set cisco.cloud.clientId, then outpost cisco cloud credentials --secret-file FILE')];
  const sealed = db?.prepare("SELECT value FROM meta WHERE key = 'cssm.client_secret'").pluck().get() as string | undefined;
  if (!sealed) return [fail('upstream', "no client secret is stored for Cisco's cloud", 'outpost cisco cloud credentials --secret-file FILE')];
  let secret: string;
  try {
    secret = new SecretBox(dataDir).open(sealed, 'cssm.client_secret');
  } catch {
    return [fail('upstream', "the stored client secret for Cisco's cloud cannot be opened (see the secret key check)", 'outpost cisco cloud credentials --secret-file FILE')];
  }
  const agent = agentFor(cloud.caFile, o.timeoutMs);
  try {
    const res = await request(cloud.tokenUrl, {
      method: 'POST', dispatcher: agent, signal: AbortSignal.timeout(o.timeoutMs),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cloud.clientId, client_secret: secret }).toString(),
    });
    await res.body.dump();
    if (res.statusCode === 400 || res.statusCode === 401 || res.statusCode === 403) return [fail('upstream', `Cisco's token endpoint ${cloud.tokenUrl} refuses the client credentials (${res.statusCode})`, 'check cisco.cloud.clientId, and set the secret again: outpost cisco cloud credentials --secret-file FILE')];
    if (res.statusCode >= 300) return [fail('upstream', `Cisco's token endpoint ${cloud.tokenUrl} answers ${res.statusCode}`, 'check cisco.cloud.tokenUrl; try again later')];
  } catch (e) {
    return [fail('upstream', `Cisco's token endpoint ${cloud.tokenUrl} cannot be reached (${reason(e)})`, 'check the network path and proxy to Cisco, and cisco.cloud.caFile')];
  } finally {
    await agent.close();
  }
  return [ok('upstream', `Cisco's token endpoint accepts the client credentials`)];
}

function tcpReachable(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (problem: string | null) => {
      s.destroy();
      resolve(problem);
    };
    s.setTimeout(timeoutMs, () => done('timed out'));
    s.once('connect', () => done(null));
    s.once('error', (e) => done(reason(e)));
  });
}

/** A TCP connection to each polled IOS-XE device, a few at a time. */
export async function polledDeviceChecks(db: Db | undefined, o: NetworkOptions): Promise<Check[]> {
  const hasTable = db?.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'polled_devices'").get();
  if (!db || !hasTable) return [];
  const devices = db.prepare('SELECT name, host, port FROM polled_devices ORDER BY name').all() as { name: string; host: string; port: number }[];
  if (!devices.length) return [];
  const down: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < devices.length) {
      const d = devices[next++]!;
      const problem = await tcpReachable(d.host, d.port, o.timeoutMs);
      if (problem) down.push(`${d.name} (${d.host}:${d.port}: ${problem})`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, devices.length) }, worker));
  if (!down.length) return [ok('polled devices', `all ${devices.length} answer on their port`)];
  down.sort();
  const shown = down.slice(0, 10).join(', ') + (down.length > 10 ? `, and ${down.length - 10} more` : '');
  return [fail('polled devices', `${down.length} of ${devices.length} polled device(s) cannot be reached: ${shown}`, 'check that each device is up and its RESTCONF/HTTPS port is open to this host (outpost cisco devices show DEVICE)')];
}
