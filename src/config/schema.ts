import { z } from 'zod';
import cron from 'node-cron';
import { isTimeZone } from '../time/zone.js';

/** Usage and entitlements cross the network in the clear over plain http: only on the host itself. */
export const isLoopbackHost = (h: string): boolean => h === 'localhost' || h === '[::1]' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

export const configSchema = z.strictObject({
  dataDir: z.string().min(1),
  http: z.strictObject({
    host: z.string().min(1),
    port,
    maxBodyBytes: positiveInt.max(64 * 1024 * 1024),
    /** Browser origins besides the collector's own that may change state (a console served elsewhere). */
    /** Request-body bytes held across all connections before a body is refused (503). */
    maxBufferedBytes: positiveInt.max(4 * 1024 * 1024 * 1024),
    /** Open connections from one address; more are closed at once. */
    maxConnectionsPerAddress: positiveInt.max(100_000),
    /** How long a request (headers and body) may take to arrive; a stalled body is cut. */
    bodyTimeoutSeconds: positiveInt.max(600),
    allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s?#]+$/, 'an origin: scheme://host[:port], no path')),
  }),
  https: z.strictObject({
    /**
     * Where the HTTPS listener (device API and operator API, the same handler as http) listens.
     * All addresses by default: configuring a certificate is the decision to serve the network.
     */
    host: z.string().min(1),
    port,
    /** PEM certificate chain: with keyFile, the collector also serves HTTPS; both empty, it does not. Re-read on SIGHUP. */
    certFile: z.string(),
    /** PEM private key of certFile, readable by its owner only (mode 0600). Re-read on SIGHUP. */
    keyFile: z.string(),
  }),
  rate: z.strictObject({
    /** Signed requests one device may make a minute (a token bucket holding a minute's worth); more are answered 429. */
    devicePerMinute: positiveInt.max(10_000_000),
    /** Device API requests one address may make a minute, whatever they are: many devices may sit behind one NAT. */
    addressPerMinute: positiveInt.max(100_000_000),
    /** Failed operator logins one account may have in loginWindowMinutes before it must wait. */
    loginFailuresPerAccount: positiveInt.max(1000),
    /** Failed operator logins one address may have in loginWindowMinutes, whatever the accounts. */
    loginFailuresPerAddress: positiveInt.max(100_000),
    /** The window the login failures are counted in; they come back evenly over it. */
    loginWindowMinutes: positiveInt.max(24 * 60),
  }),
  device: z.strictObject({
    signatureWindowSeconds: positiveInt.max(3600),
    maxFutureSkewSeconds: positiveInt.max(86_400),
    staleAfterDays: positiveInt,
    maxReportsPerBatch: positiveInt.max(10_000),
    maxMeasurementsPerReport: positiveInt.max(100_000),
  }),
  backup: z.strictObject({
    /** Scheduled backups on or off; `outpost backup FILE` works either way. */
    enabled: z.boolean(),
    /** When a scheduled backup runs (daily by default, at a quiet hour of the site's zone). */
    cron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** Where scheduled backups go; empty: `backups` in the data folder. Keep them on another disk if you can. */
    dir: z.string(),
    /** Scheduled backups kept: the oldest beyond this are deleted after each new one. */
    keep: positiveInt.max(10_000),
    /** Scheduled backups include the private and secret keys (then guard them as the keys themselves). */
    withKeys: z.boolean(),
  }),
  ready: z.strictObject({
    /** /readyz answers 503 when the data folder's disk has less free space than this (MB). */
    minFreeDiskMb: z.number().int().min(0).max(100_000_000),
  }),
  store: z.strictObject({
    /**
     * Who moves the WAL into the database file: a worker thread with its own connection (the
     * main thread never waits on it), or the committing connection as SQLite does by default.
     */
    checkpoints: z.enum(['worker', 'commit']),
  }),
  policy: z.strictObject({
    reportingIntervalDays: positiveInt,
    ackDueDays: positiveInt,
  }),
  alerts: z.strictObject({
    evaluateCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    expiryWarningDays: positiveInt,
  }),
  forecast: z.strictObject({
    /** A VA and tag whose trend passes what it owns within this many days raises shortage_forecast. */
    alertDays: z.number().int().min(0).max(3650),
    /** The fit looks back over this many complete days. */
    windowDays: z.number().int().min(2).max(3650),
    /** Fewer days with a value in the window than this: no forecast. */
    minDays: z.number().int().min(2).max(3650),
    /** When the forecast alert is evaluated (daily by default; also at start). */
    evaluateCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
  }).refine((f) => f.minDays <= f.windowDays, { message: 'minDays must not exceed windowDays', path: ['minDays'] }),
  events: z.strictObject({
    /**
     * When the collector signs a checkpoint of its audit trail's head (hourly by default; every
     * usage export and sync part signs one too). A rewrite of the trail is found only against
     * checkpoints made before it, so the interval bounds how closely it is located.
     */
    checkpointCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
  }),
  time: z.strictObject({
    /** The calendar schedules run on and export periods are named in; the host's TZ plays no part. */
    zone: z.string().refine(isTimeZone, 'an IANA time zone name, such as UTC, Europe/Paris or America/Los_Angeles'),
    backwardsToleranceSeconds: z.number().int().min(0),
    forwardToleranceSeconds: z.number().int().min(1).max(86_400),
    /** On start, a system clock further than this past the stored floor is not believed until confirmed. */
    maxDowntimeDays: z.number().int().min(1).max(3650),
  }),
  exchange: z.strictObject({
    bundleDir: z.string().min(1),
    exportCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** Replace device hostnames in exports with a keyed hash, for sites that may not disclose them. */
    hashHostnames: z.boolean(),
    inboxPollSeconds: positiveInt.max(3600),
    keyGraceDays: z.number().int().min(0).max(365),
    /** What a response's payloads may inflate to, all together, even when validly signed. */
    maxResponseBytes: positiveInt.max(64 * 1024 * 1024 * 1024),
    /** How many times its compressed size one payload may inflate to. */
    maxResponseRatio: positiveInt.max(1100),
    /** disconnected: bundles carried by hand (the default). connected: a scheduled sync over HTTPS. */
    mode: z.enum(['disconnected', 'connected']),
    upstream: z.strictObject({
      /** outpost: an Outpost upstream (bundles, or the outpost-sync protocol). cisco: Cisco's cloud (the portal file, or its REST API). */
      kind: z.enum(['outpost', 'cisco']),
    }),
    syncCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** One sync request carries at most this many reports; a backlog goes up in consecutive parts. */
    maxReportsPerPart: positiveInt.max(1_000_000),
    /** ... and at most about this many bytes of report lines (before compression). */
    maxBytesPerPart: positiveInt.min(1 << 20).max(1 << 30),
    /** An alert when no sync has succeeded for this long (connected mode). */
    syncOverdueHours: positiveInt.max(24 * 90),
    /** An alert when the upstream has not answered for this long (connected mode). */
    unreachableAlertHours: positiveInt.max(24 * 90),
    connection: z.strictObject({
      /** The upstream's base URL: https://host:8183. Plain http only to a loopback address. */
      url: z.union([
        z.literal(''),
        z
          .url({ protocol: /^https?$/, error: 'an http(s) URL, such as https://upstream.example:8183' })
          .refine((u) => new URL(u).protocol === 'https:' || isLoopbackHost(new URL(u).hostname), 'plain http only to a loopback address (127.0.0.1, ::1, localhost): use https'),
      ]),
      /** A PEM bundle of CAs to trust for the upstream's certificate, besides (or instead of) the system's. */
      caFile: z.string(),
      systemCa: z.boolean(),
      /** The upstream certificate's public key, pinned as sha256//<base64 of the SPKI's SHA-256> (curl's --pinnedpubkey form). */
      pinSha256: z.union([z.literal(''), z.string().regex(/^sha256\/\/[A-Za-z0-9+/]{43}=$/, 'sha256//<base64 SHA-256 of the certificate public key>')]),
      /** An HTTP(S) proxy the collector goes through (CONNECT), with optional Basic authentication. */
      proxyUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'an http(s) proxy URL, such as http://proxy.example:3128' })]),
      proxyUsername: z.string().max(256),
      /** A file (mode 0600) holding the proxy password: never in the config itself. */
      proxyPasswordFile: z.string(),
      connectTimeoutSeconds: positiveInt.max(300),
      headersTimeoutSeconds: positiveInt.max(3600),
      bodyTimeoutSeconds: positiveInt.max(3600),
    }),
    /** A failed sync is retried this many times, with exponential backoff and jitter, then waits for the schedule. */
    retry: z.strictObject({
      attempts: z.number().int().min(1).max(20),
      baseSeconds: z.number().min(0).max(600),
      maxSeconds: z.number().min(0).max(3600),
    }),
  }),
  rum: z.strictObject({
    /** RUMReport elements one file may hold: bounds an import's time and memory (a device writes a handful). */
    maxElements: positiveInt.max(1_000_000),
    /** How far ahead of the collector's clock a RUM measurement may end: devices' clocks drift, so wider than a signed report's. */
    maxFutureSkewSeconds: positiveInt.max(30 * 86_400),
  }),
  cisco: z.strictObject({
    /** When the IOS-XE devices are polled (daily by default); `outpost cisco poll` runs it at once. */
    pollCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** Devices polled at once: one slow device never holds the others. */
    concurrency: positiveInt.max(256),
    /** How long one request to a device may take, from connecting to the last byte. */
    timeoutSeconds: positiveInt.max(600),
    /** Attempts after the first, with backoff, before a device's poll is recorded as failed. */
    retries: z.number().int().min(0).max(10),
    /** A PEM bundle of CAs for devices in `ca` mode, besides the system's. */
    caFile: z.string(),
    /**
     * The site sends its Cisco devices' RUM reports to the vendor portal by its offline upload
     * file (`outpost cisco export`): each RUM report then waits for the portal's ACK too.
     */
    portal: z.boolean(),
    /** Cisco Smart Software Manager through its public REST API: the upstream when exchange.upstream.kind is cisco. */
    cloud: z.strictObject({
      /** The OAuth 2.0 token endpoint (client credentials). */
      tokenUrl: z.url({ protocol: /^https?$/ }),
      /** The Smart Accounts and Licensing API's base, up to and including smart-accounts-and-licensing. */
      apiUrl: z.url({ protocol: /^https?$/ }),
      clientId: z.string().max(200),
      /** The smart account's domain, e.g. example.com. */
      domain: z.string().max(200),
      /** Outpost VA name → CSSM virtual account name: CSSM owns the list; a VA not named here is not synced. */
      virtualAccounts: z.record(z.string().min(1).max(100), z.string().min(1).max(200)),
      /** License name → entitlement tag, for positions whose answer carries no tag. */
      licenseTags: z.record(z.string().min(1).max(256), z.string().min(1).max(256)),
      /** A PEM bundle of CAs for the two URLs, besides the system's. */
      caFile: z.string(),
      /** One request's bound, from connecting to the last byte. */
      timeoutSeconds: positiveInt.max(600),
      /** Between two polls of an upload's answer (CSSM takes minutes). */
      pollSeconds: positiveInt.max(3600),
      /** How long an upload's answer is waited for within one sync; it is polled again at the next. */
      maxPollMinutes: positiveInt.max(24 * 60),
    }),
  }),
  retention: z.strictObject({
    /**
     * Raw reports settled with every destination and received longer ago than this are pruned,
     * each leaving a tombstone (its id and content hash); 0 keeps them for ever.
     */
    reportsDays: z.number({ error: 'a whole number of days (0 keeps reports for ever)' })
      .int('a whole number of days (0 keeps reports for ever)')
      .min(0, 'a number of days, 0 or more (0 keeps reports for ever)')
      .max(36_500, 'at most 36500 days (0 keeps reports for ever)'),
    /** When the prune runs (daily by default); `outpost reports prune` runs it at once. */
    pruneCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** Reports one prune transaction examines and removes at most: keeps each write short beside ingest. */
    batchSize: positiveInt.max(10_000),
  }),
  notifications: z.strictObject({
    /** Deliveries are attempted again after these many seconds in turn, the last repeated (30 s, 2 min, 10 min, 1 h, then every 6 h). */
    retrySeconds: z.array(z.coerce.number().positive().max(7 * 86_400)).min(1).max(20),
    /** A notification not delivered this long after it was written is marked failed, with the last error. */
    giveUpHours: z.number().positive().max(24 * 90),
    /** Repeats of an alert (same kind and subject) within this window are one notification saying how many times; 0: none coalesced. */
    coalesceMinutes: z.number().min(0).max(24 * 60),
    /** How often the outbox is looked at for what is due (a new notification is sent at once besides). */
    pollSeconds: z.number().positive().max(3600),
    /** One delivery's bound, from connecting to the answer. */
    timeoutSeconds: z.number().positive().max(600),
    /** Deliveries in flight at once, all channels together. */
    concurrency: positiveInt.max(256),
    /** When the daily digest is written for the subscribers who asked for one (the site's zone). */
    digestCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** The syslog HOSTNAME field; empty: the host's name. */
    syslogHostname: z.string().max(255).regex(/^[!-~]*$/, 'printable ASCII without spaces (RFC 5424 HOSTNAME)'),
    email: z.strictObject({
      /** The SMTP relay; empty: no e-mail is sent (subscriptions wait, marked pending). */
      host: z.string().max(255),
      port,
      /** TLS from the first byte (port 465). */
      secure: z.boolean(),
      /** Upgrade with STARTTLS and refuse a relay that does not offer it (port 587); false: plain SMTP (a relay on the host). */
      starttls: z.boolean(),
      /** A PEM bundle of CAs for the relay's certificate, besides the system's. */
      caFile: z.string(),
      /** AUTH user; empty: no authentication. */
      user: z.string().max(256),
      /** A file (mode 0600) holding the AUTH password: never in the config itself. */
      passwordFile: z.string(),
      from: z.string().min(3).max(256),
    }),
  }),
  sessions: z.strictObject({
    /** A browser session ends after this long without a request. */
    idleMinutes: positiveInt.max(24 * 60),
    /** And after this long whatever happens: signing in again is then needed. */
    absoluteHours: positiveInt.max(30 * 24),
  }),
  upstream: z.strictObject({
    dataDir: z.string().min(1),
    /** Where `outpost upstream serve` listens. */
    host: z.string().min(1),
    port,
    /** PEM certificate chain and key: with both, the upstream serves HTTPS. */
    certFile: z.string(),
    keyFile: z.string(),
    /** Plain HTTP on an address other than loopback: refused unless this is set. */
    allowPlainHttp: z.boolean(),
    /** The largest usage bundle one request may carry. */
    maxBundleBytes: positiveInt.max(4 * 1024 * 1024 * 1024),
    /** How long a collector's fetch of an answer may wait for it before a 202 (long poll). */
    maxWaitSeconds: z.number().int().min(0).max(120),
    /**
     * Bodies still arriving, across every connection: anyone who reaches the port may post, and
     * a bundle is judged only once it has arrived, so this bounds the disk unverified uploads
     * hold. Never less than maxBundleBytes in effect.
     */
    maxUploadingBytes: positiveInt,
    /** The longest silence while a posted body arrives: a stalled upload gives its room back. */
    bodyTimeoutSeconds: z.number().int().min(1).max(3600),
    /** Enrollment requests kept waiting for the operator: anyone may post one under a new id. */
    maxPendingEnrollments: positiveInt.max(1_000_000),
  }),
  shutdown: z.strictObject({
    /**
     * How long a stop waits for requests in flight before it cuts them. Keep it well below the
     * service manager's stop timeout (TimeoutStopSec=30s in systemd/): the store is closed
     * after it, and a process killed there leaves it to SQLite's recovery at the next start.
     */
    graceSeconds: z.number().int().min(0).max(300),
  }),
  log: z.strictObject({
    level: z.enum(['error', 'warn', 'info', 'debug']),
    /** json, text, or auto: JSON under systemd, in production or into a pipe; text on a terminal. */
    format: z.enum(['json', 'text', 'auto']),
    /** Device requests are logged as one summary line per this many seconds (none when idle), not one line each. */
    deviceSummarySeconds: positiveInt.min(5).max(86_400),
  }),
});

export type Config = z.infer<typeof configSchema>;
