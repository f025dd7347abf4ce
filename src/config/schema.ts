import { z } from 'zod';
import cron from 'node-cron';
import { isTimeZone } from '../time/zone.js';

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
  device: z.strictObject({
    signatureWindowSeconds: positiveInt.max(3600),
    maxFutureSkewSeconds: positiveInt.max(86_400),
    staleAfterDays: positiveInt,
    maxReportsPerBatch: positiveInt.max(10_000),
    maxMeasurementsPerReport: positiveInt.max(100_000),
  }),
  policy: z.strictObject({
    reportingIntervalDays: positiveInt,
    ackDueDays: positiveInt,
  }),
  alerts: z.strictObject({
    evaluateCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    expiryWarningDays: positiveInt,
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
  }),
  rum: z.strictObject({
    /** RUMReport elements one file may hold: bounds an import's time and memory (a device writes a handful). */
    maxElements: positiveInt.max(1_000_000),
    /** How far ahead of the collector's clock a RUM measurement may end: devices' clocks drift, so wider than a signed report's. */
    maxFutureSkewSeconds: positiveInt.max(30 * 86_400),
  }),
  upstream: z.strictObject({
    dataDir: z.string().min(1),
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
  }),
});

export type Config = z.infer<typeof configSchema>;
