import { z } from 'zod';
import cron from 'node-cron';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

export const configSchema = z.strictObject({
  dataDir: z.string().min(1),
  http: z.strictObject({
    host: z.string().min(1),
    port,
    maxBodyBytes: positiveInt.max(64 * 1024 * 1024),
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
    backwardsToleranceSeconds: z.number().int().min(0),
  }),
  exchange: z.strictObject({
    bundleDir: z.string().min(1),
    exportCron: z.string().refine((s) => cron.validate(s), 'a cron expression (five or six fields)'),
    /** Replace device hostnames in exports with a keyed hash, for sites that may not disclose them. */
    hashHostnames: z.boolean(),
    inboxPollSeconds: positiveInt.max(3600),
    keyGraceDays: z.number().int().min(0).max(365),
  }),
  rum: z.strictObject({
    /** RUMReport elements one file may hold: bounds an import's time and memory (a device writes a handful). */
    maxElements: positiveInt.max(1_000_000),
  }),
  upstream: z.strictObject({
    dataDir: z.string().min(1),
  }),
  log: z.strictObject({
    level: z.enum(['error', 'warn', 'info', 'debug']),
  }),
});

export type Config = z.infer<typeof configSchema>;
