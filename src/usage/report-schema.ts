import { z } from 'zod';

/** Unix seconds: what devices (and RUM reports) speak. */
const unixSeconds = z.number().int().nonnegative().max(32503680000);

export const measurementSchema = z
  .strictObject({
    tag: z.string().min(1).max(256),
    count: z.number({ error: 'count must be a number' }).int('count must be an integer').nonnegative('count must not be negative').max(1e9),
    start: unixSeconds,
    end: unixSeconds,
  })
  .refine((m) => m.end >= m.start, { message: 'the period ends before it starts', path: ['end'] });

export const reportSchema = (maxMeasurements: number) =>
  z.strictObject({
    reportId: z.string().min(1).max(128).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
    seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    generatedAt: unixSeconds,
    measurements: z.array(measurementSchema).min(1).max(maxMeasurements),
  });

export type DeviceReport = z.infer<ReturnType<typeof reportSchema>>;

export const batchSchema = (maxReports: number, maxMeasurements: number) =>
  z.strictObject({ reports: z.array(reportSchema(maxMeasurements)).min(1).max(maxReports) });
